# A custom API key model, as DRF API Key's documentation describes one:
# keys that belong to an organisation, in a table of their own
# (orgs_organizationapikey) with an extra column (organization_id).
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class Organization(models.Model):
    name = models.CharField(max_length=128)


class OrganizationAPIKey(AbstractAPIKey):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
