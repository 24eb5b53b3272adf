package apikeyportal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// pageSize is the number of keys on one page of the list.
const pageSize = 50

// list shows the owner's keys, newest first.
func (p *portal) list(w http.ResponseWriter, r *http.Request, owner string) {
	q := r.URL.Query()
	page, err := p.m.List(r.Context(), apikey.KeyFilter{Owner: owner, Cursor: q.Get("cursor"), Limit: pageSize})
	if err != nil {
		p.fail(w, r, owner, err)
		return
	}
	v := p.view(r, owner, p.title)
	v.Keys, v.NextCursor = page.Keys, page.NextCursor
	v.AtLimit = p.atLimit(r.Context(), owner)
	if len(page.Keys) > 0 && q.Get("cursor") == "" {
		if v.Usage, err = p.usageOf(r.Context(), page.Keys, "usage", "Verifications of your keys, last 7 days (UTC)"); err != nil {
			p.fail(w, r, owner, err)
			return
		}
	}
	if id := q.Get("revoked"); id != "" {
		// Only a key of this owner that is revoked earns the notice, so
		// the parameter can neither probe nor spoof.
		if k, err := p.load(r.Context(), owner, id); err == nil && k.Revoked() {
			v.Notice = fmt.Sprintf("The key “%s” (%s) has been revoked.", k.Name, k.ID)
		}
	}
	p.render(w, r, http.StatusOK, "list.html", v)
}

// form is the creation form as submitted, with its errors.
type form struct {
	Name    string
	Expires string          // an expiryChoice.Value
	Checked map[string]bool // scopes
	Errors  map[string]string
	Problem string // an error about the whole form
}

func (p *portal) formView(r *http.Request, owner string, f *form) *view {
	v := p.view(r, owner, "Create a key")
	v.Form, v.Expiry, v.Scopes = f, p.expiry, p.allowed
	if p.allowed == nil {
		v.Fixed = p.defaults
	}
	return v
}

// newForm shows an empty creation form.
func (p *portal) newForm(w http.ResponseWriter, r *http.Request, owner string) {
	if msg := p.atLimit(r.Context(), owner); msg != "" {
		v := p.view(r, owner, "Create a key")
		v.Message = msg
		p.render(w, r, http.StatusConflict, "error.html", v)
		return
	}
	f := &form{Expires: p.expiryDef, Checked: map[string]bool{}, Errors: map[string]string{}}
	if p.allowed != nil {
		for _, s := range p.defaults {
			f.Checked[s] = true
		}
	}
	p.render(w, r, http.StatusOK, "new.html", p.formView(r, owner, f))
}

// create creates a key from the form and redirects to the page that shows
// its secret once.
func (p *portal) create(w http.ResponseWriter, r *http.Request, owner string) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, owner, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	f := &form{
		Name:    r.PostForm.Get("name"),
		Expires: r.PostForm.Get("expires"),
		Checked: map[string]bool{},
		Errors:  map[string]string{},
	}
	params := apikey.CreateParams{Name: strings.TrimSpace(f.Name), Owner: owner}

	if params.Name == "" {
		f.Errors["name"] = "Enter a name, such as the program that will use the key."
	}
	if p.allowed == nil {
		params.Scopes = slices.Clone(p.defaults)
	} else {
		for _, s := range r.PostForm["scope"] {
			if !slices.Contains(p.allowed, s) {
				f.Errors["scopes"] = "Choose scopes from the list."
				continue
			}
			f.Checked[s] = true
			params.Scopes = append(params.Scopes, s)
		}
	}
	choice, ok := p.expiryChoice(f.Expires)
	if !ok {
		f.Errors["expires"] = "Choose an expiry from the list."
	} else if choice.d > 0 {
		t := p.m.Now().Add(choice.d)
		params.ExpiresAt = &t
	}
	if len(f.Errors) > 0 {
		p.render(w, r, http.StatusUnprocessableEntity, "new.html", p.formView(r, owner, f))
		return
	}

	k, token, err := p.m.Create(r.Context(), params)
	if err != nil {
		var ve *apikey.ValidationError
		switch {
		case errors.As(err, &ve):
			switch ve.Field {
			case "name":
				f.Errors["name"] = "The name " + ve.Reason + "."
			case "scopes":
				f.Errors["scopes"] = "The scopes are not valid: " + ve.Reason + "."
			case "expires_at":
				f.Errors["expires"] = "The expiry " + ve.Reason + "."
			default:
				f.Problem = "The key could not be created: " + ve.Field + " " + ve.Reason + "."
			}
			p.render(w, r, http.StatusUnprocessableEntity, "new.html", p.formView(r, owner, f))
		case errors.Is(err, apikey.ErrTooManyKeys):
			f.Problem = p.limitMessage(r.Context(), owner)
			p.render(w, r, http.StatusConflict, "new.html", p.formView(r, owner, f))
		default:
			p.fail(w, r, owner, err)
		}
		return
	}
	p.reveals.put(owner, k, token, p.m.Now())
	redirect(w, r, k.ID+"/created")
}

// atLimit returns, when owner holds as many keys as the Manager allows,
// the message that replaces the offer to create one; else "". A failure
// to count offers the form: Create still enforces the limit.
func (p *portal) atLimit(ctx context.Context, owner string) string {
	limit, err := p.m.OwnerKeyLimit(ctx, owner)
	if err != nil || limit <= 0 {
		return ""
	}
	if n, err := p.held(ctx, owner); err != nil || n < limit {
		return ""
	}
	return p.limitMessage(ctx, owner)
}

// limitMessage explains that owner holds as many keys as the Manager
// allows. The Manager does not publish its limit, but at the moment Create
// refuses, the owner's keys that are not revoked are exactly that many.
func (p *portal) limitMessage(ctx context.Context, owner string) string {
	n, err := p.held(ctx, owner)
	if err != nil || n == 0 {
		return "You have reached the limit of keys you may hold; revoke one to create another."
	}
	keys := "keys"
	if n == 1 {
		keys = "key"
	}
	return fmt.Sprintf("You have reached the limit of %d %s; revoke one to create another.", n, keys)
}

// held counts the owner's keys that are not revoked, which are the ones
// the Manager's limit counts.
func (p *portal) held(ctx context.Context, owner string) (int, error) {
	n := 0
	f := apikey.KeyFilter{Owner: owner, Limit: apikey.MaxPageSize}
	for {
		page, err := p.m.List(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, k := range page.Keys {
			if !k.Revoked() {
				n++
			}
		}
		if page.NextCursor == "" {
			return n, nil
		}
		f.Cursor = page.NextCursor
	}
}

// created shows the secret of a key just created, once.
func (p *portal) created(w http.ResponseWriter, r *http.Request, owner string) {
	k, err := p.load(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		p.fail(w, r, owner, err)
		return
	}
	v := p.view(r, owner, "Your new key")
	v.Key = k
	// A HEAD request (a link checker, a prefetcher) must not use up the
	// one view.
	if r.Method == http.MethodGet {
		if rv, ok := p.reveals.take(owner, k.ID, p.m.Now()); ok {
			v.Token = rv.token
		}
	}
	if v.Token == "" {
		v.Heading = "Key secret no longer available"
	}
	p.render(w, r, http.StatusOK, "created.html", v)
}

// show shows one key.
func (p *portal) show(w http.ResponseWriter, r *http.Request, owner string) {
	k, err := p.load(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		p.fail(w, r, owner, err)
		return
	}
	v := p.view(r, owner, k.Name)
	v.Key = k
	if v.Usage, err = p.usageOf(r.Context(), []*apikey.Key{k}, "key-usage", "Verifications of this key, last 7 days (UTC)"); err != nil {
		p.fail(w, r, owner, err)
		return
	}
	p.render(w, r, http.StatusOK, "key.html", v)
}

// confirmRevoke asks before revoking.
func (p *portal) confirmRevoke(w http.ResponseWriter, r *http.Request, owner string) {
	k, err := p.load(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		p.fail(w, r, owner, err)
		return
	}
	v := p.view(r, owner, "Revoke “"+k.Name+"”?")
	v.Key = k
	p.render(w, r, http.StatusOK, "revoke.html", v)
}

// revoke revokes one of the owner's keys. The id comes from the path only:
// form fields are ignored.
func (p *portal) revoke(w http.ResponseWriter, r *http.Request, owner string) {
	k, err := p.load(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		p.fail(w, r, owner, err)
		return
	}
	if !k.Revoked() {
		if _, err := p.m.Revoke(r.Context(), k.ID); err != nil {
			p.fail(w, r, owner, err)
			return
		}
	}
	p.reveals.drop(owner, k.ID)
	redirect(w, r, "?revoked="+k.ID)
}

// expiryChoice is one option of the expiry menu.
type expiryChoice struct {
	Value string // seconds, or "never"
	Label string
	d     time.Duration // zero for never
}

// expiryChoices returns the expiry menu for max (zero: no maximum) and the
// value preselected in it.
func expiryChoices(max time.Duration) ([]expiryChoice, string) {
	var out []expiryChoice
	if max == 0 {
		out = append(out, expiryChoice{Value: "never", Label: "Never"})
	}
	const day = 24 * time.Hour
	for _, d := range []time.Duration{7 * day, 30 * day, 90 * day, 365 * day} {
		if max == 0 || d <= max {
			out = append(out, newChoice(d))
		}
	}
	if max > 0 && !slices.ContainsFunc(out, func(c expiryChoice) bool { return c.d == max }) {
		out = append(out, newChoice(max))
	}
	def := out[len(out)-1].Value
	for _, c := range out {
		if c.d == 90*day {
			def = c.Value
		}
	}
	return out, def
}

func newChoice(d time.Duration) expiryChoice {
	return expiryChoice{Value: strconv.FormatInt(int64(d/time.Second), 10), Label: duration(d), d: d}
}

// duration writes d in days, hours or minutes, as a person would.
func duration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case d == 365*24*time.Hour:
		return "1 year"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	default:
		return plural(int64(d/time.Minute), "minute")
	}
}

func (p *portal) expiryChoice(value string) (expiryChoice, bool) {
	for _, c := range p.expiry {
		if c.Value == value {
			return c, true
		}
	}
	return expiryChoice{}, false
}
