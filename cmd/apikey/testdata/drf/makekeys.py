"""Makes keys with DRF API Key itself, for apikey's import test.

Run under Debian's /usr/bin/python3 with DRF API Key's source on
PYTHONPATH, in a throw-away directory that holds the app "orgs" (a custom
key model). Environment:

  DRF_DB        "sqlite:PATH" or "postgres:HOST:PORT:DATABASE:USER:SCHEMA"
  DRF_DUMP      optional: a file to write "manage.py dumpdata" output to

It migrates the database, makes keys with APIKey.objects.create_key (and
OrganizationAPIKey.objects.create_key): active, expiring, expired and
revoked ones, and for every legacy Django hasher available one whose hash
is rewritten with Django's make_password; then prints on standard output a
JSON list of {key, name, table, hasher, state, owner} for the test to check.

The legacy hashers run with lowered costs (subclasses, as Django's own test
settings do) so that a race-detector build of apikey checks them quickly;
they write the same format as the defaults. One pbkdf2_sha256 key keeps
Django's default iterations. Django gained scrypt in 4.0: on an older
Django the scrypt digest is computed with hashlib.scrypt in the format of
Django's ScryptPasswordHasher.
"""

import base64
import datetime
import hashlib
import json
import os
import sys

import django
from django.conf import settings

spec = os.environ["DRF_DB"]
if spec.startswith("sqlite:"):
    db = {"ENGINE": "django.db.backends.sqlite3", "NAME": spec[len("sqlite:"):]}
else:
    _, host, port, name, user, schema = spec.split(":", 5)
    db = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": host,
        "PORT": port,
        "NAME": name,
        "USER": user,
        "OPTIONS": {"options": "-c search_path=" + schema},
    }

settings.configure(
    SECRET_KEY="throw-away",
    USE_TZ=True,
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "rest_framework_api_key",
        "orgs",
    ],
    DATABASES={"default": db},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.contrib.auth import hashers  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_api_key.models import APIKey  # noqa: E402

from orgs.models import Organization, OrganizationAPIKey  # noqa: E402

call_command("makemigrations", "orgs", verbosity=0)
call_command("migrate", verbosity=0)


class PBKDF2(hashers.PBKDF2PasswordHasher):
    iterations = 1000


class PBKDF2SHA1(hashers.PBKDF2SHA1PasswordHasher):
    iterations = 1000


class Argon2(hashers.Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 2


class BCryptSHA256(hashers.BCryptSHA256PasswordHasher):
    rounds = 4


class BCrypt(hashers.BCryptPasswordHasher):
    rounds = 4


def scrypt_hash(key):
    if hasattr(hashers, "ScryptPasswordHasher"):
        class Scrypt(hashers.ScryptPasswordHasher):
            work_factor = 2**10
        return hashers.make_password(key, hasher=Scrypt())
    salt = hashers.BasePasswordHasher().salt()
    n, r, p = 2**10, 8, 1
    digest = hashlib.scrypt(key.encode(), salt=salt.encode(), n=n, r=r, p=p, dklen=64)
    return "scrypt$%d$%s$%d$%d$%s" % (n, salt, r, p, base64.b64encode(digest).decode("ascii").strip())


def available(hasher):
    try:
        hasher._load_library()
    except (AttributeError, ValueError):
        return not hasattr(hasher, "library")
    return True


legacy = [("pbkdf2_sha256", lambda k: hashers.make_password(k, hasher=PBKDF2())),
          ("pbkdf2_sha1", lambda k: hashers.make_password(k, hasher=PBKDF2SHA1()))]
if available(Argon2()):
    legacy.append(("argon2", lambda k: hashers.make_password(k, hasher=Argon2())))
if available(BCryptSHA256()):
    legacy.append(("bcrypt_sha256", lambda k: hashers.make_password(k, hasher=BCryptSHA256())))
    legacy.append(("bcrypt", lambda k: hashers.make_password(k, hasher=BCrypt())))
legacy.append(("scrypt", scrypt_hash))

out = []
now = timezone.now()


def make(model, name, state="valid", hasher="sha512", rewrite=None, owner="", **fields):
    obj, key = model.objects.create_key(name=name, **fields)
    if rewrite is not None:
        # Keys of DRF API Key 1.x carried such hashes; DRF API Key 3.1.0
        # still verifies them and rewrites them on a correct use.
        model.objects.filter(pk=obj.pk).update(hashed_key=rewrite(key))
    out.append({"key": key, "name": name, "table": model._meta.db_table, "hasher": hasher, "state": state, "owner": owner})


make(APIKey, "active")
make(APIKey, "expiring", expiry_date=now + datetime.timedelta(days=30))
make(APIKey, "expired", state="expired", expiry_date=now - datetime.timedelta(hours=1))
make(APIKey, "revoked", state="revoked", revoked=True)
for alg, rewrite in legacy:
    make(APIKey, "legacy " + alg, hasher=alg, rewrite=rewrite)
make(APIKey, "legacy pbkdf2_sha256 revoked", state="revoked", hasher="pbkdf2_sha256",
     rewrite=legacy[0][1], revoked=True)
make(APIKey, "legacy pbkdf2_sha256 default cost", hasher="pbkdf2_sha256",
     rewrite=lambda k: hashers.make_password(k, hasher="pbkdf2_sha256"))

acme = Organization.objects.create(name="acme")
globex = Organization.objects.create(name="globex")
make(OrganizationAPIKey, "acme backend", organization=acme, owner=str(acme.pk))
make(OrganizationAPIKey, "acme old", state="revoked", organization=acme, revoked=True, owner=str(acme.pk))
make(OrganizationAPIKey, "globex legacy", hasher="pbkdf2_sha256", rewrite=legacy[0][1], organization=globex,
     owner=str(globex.pk))

if os.environ.get("DRF_DUMP"):
    call_command("dumpdata", "rest_framework_api_key", "orgs.organizationapikey", output=os.environ["DRF_DUMP"])

json.dump(out, sys.stdout)
