package admin

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// listData is the key list page.
type listData struct {
	Q, State, Env, Owner, CreatedFrom, CreatedTo string
	Errors                                       map[string]string
	Keys                                         []*apikey.Key
	NextURL                                      string
	FirstURL                                     string
	Paged                                        bool
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := listData{
		Q: strings.TrimSpace(q.Get("q")), State: q.Get("state"), Env: q.Get("environment"), Owner: strings.TrimSpace(q.Get("owner")),
		CreatedFrom: strings.TrimSpace(q.Get("created_from")), CreatedTo: strings.TrimSpace(q.Get("created_to")),
		Errors: map[string]string{},
	}
	f := apikey.KeyFilter{Search: d.Q, Owner: d.Owner, Cursor: q.Get("cursor"), Limit: h.pageSize}
	d.Paged = f.Cursor != ""
	if f.State = apikey.State(d.State); f.State != "" && !f.State.Valid() {
		d.Errors["state"] = "Choose a state from the list."
	}
	if f.Environment = apikey.Environment(d.Env); f.Environment != "" && !f.Environment.Valid() {
		d.Errors["environment"] = "Choose live or test."
	}
	var from, to *time.Time
	for _, c := range []struct {
		field, value string
		dst          **time.Time
		add          time.Duration
	}{{"created_from", d.CreatedFrom, &from, 0}, {"created_to", d.CreatedTo, &to, 24 * time.Hour}} {
		if c.value == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, c.value)
		if err != nil {
			d.Errors[c.field] = "Enter a date such as 2030-01-31."
			continue
		}
		if !apikey.ValidTime(t) {
			d.Errors[c.field] = "Enter a date between the years 1 and 9999."
			continue
		}
		// The end of 9999-12-31 lies past the last valid instant: that
		// bound keeps every key, like no bound.
		if t = t.Add(c.add); apikey.ValidTime(t) {
			*c.dst = &t
		}
	}
	status := http.StatusOK
	if len(d.Errors) > 0 {
		status = http.StatusBadRequest
	} else {
		if from != nil {
			f.CreatedFrom = *from
		}
		if to != nil {
			f.CreatedTo = *to
		}
		var next string
		page, err := h.m.List(actor(r.Context(), s), f)
		if err == nil {
			d.Keys, next = page.Keys, page.NextCursor
		}
		var ve *apikey.ValidationError
		switch {
		case errors.As(err, &ve):
			field := map[string]string{"search": "q", "owner": "owner", "state": "state", "environment": "environment",
				"created_from": "created_from", "created_to": "created_to"}[ve.Field]
			d.Errors[cmpOr(field, "")] = sentence(ve.Reason)
			status = http.StatusBadRequest
		case err != nil:
			h.fail(w, r, s, err)
			return
		}
		if next != "" {
			d.NextURL = listURL(d, next)
		}
	}
	d.FirstURL = listURL(d, "")
	v := view{Title: "Keys", User: s.email, Nav: "keys", Data: d, Notice: notice(q)}
	h.render(w, r, status, "keys", v)
}

func listURL(d listData, cursor string) string {
	q := url.Values{}
	for name, v := range map[string]string{"q": d.Q, "state": d.State, "environment": d.Env, "owner": d.Owner,
		"created_from": d.CreatedFrom, "created_to": d.CreatedTo, "cursor": cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if len(q) == 0 {
		return "/admin/keys"
	}
	return "/admin/keys?" + q.Encode()
}

// notice returns the message of a redirect's "done" parameter. Messages
// are fixed strings, so a crafted link can only show one of them.
func notice(q url.Values) string {
	switch q.Get("done") {
	case "updated":
		return "The key was saved."
	case "revoked":
		return "The key was revoked."
	case "disabled":
		return "The key was disabled: it is refused until enabled."
	case "enabled":
		return "The key was enabled."
	case "bulk":
		n, _ := strconv.Atoi(q.Get("n"))
		if n == 1 {
			return "1 key was revoked."
		}
		return strconv.Itoa(n) + " keys were revoked."
	case "none":
		return "Select at least one key to revoke."
	case "limits":
		return "The limits and credits were saved."
	case "credits":
		return "The credits were changed."
	case "owner":
		return "The owner's limits and credits were saved."
	case "owner-deleted":
		return "The owner's limits and credits were deleted; its keys are unchanged."
	}
	return ""
}

type formData struct {
	Form     keyForm
	Key      *apikey.Key // nil on the create form
	ReadOnly bool
}

func (h *handler) newKeyForm(w http.ResponseWriter, r *http.Request, s *session) {
	d := formData{Form: keyForm{Errors: map[string]string{}}}
	h.render(w, r, http.StatusOK, "form", view{Title: "New key", User: s.email, Nav: "new", Data: d})
}

func (h *handler) createKey(w http.ResponseWriter, r *http.Request, s *session) {
	f := keyForm{
		Name: r.PostFormValue("name"), Owner: r.PostFormValue("owner"), Scopes: r.PostFormValue("scopes"),
		ExpiresAt: r.PostFormValue("expires_at"), Metadata: r.PostFormValue("metadata"), Errors: map[string]string{},
		Environment: r.PostFormValue("environment"), AllowedCIDRs: r.PostFormValue("allowed_cidrs"),
		InactivityExpiry: r.PostFormValue("inactivity_expiry"),
	}
	f.Name, f.Owner = strings.TrimSpace(f.Name), strings.TrimSpace(f.Owner)
	if f.Name == "" {
		f.Errors["name"] = "Enter a name."
	}
	p := f.parse(h.m.Now())
	if len(f.Errors) == 0 {
		k, token, err := h.m.Create(actor(r.Context(), s), apikey.CreateParams{
			Name: f.Name, Owner: f.Owner, Scopes: p.scopes, Metadata: p.metadata, ExpiresAt: p.expiresAt,
			Environment: p.env, AllowedCIDRs: p.cidrs, InactivityExpiry: p.inactivity,
		})
		if err == nil {
			h.reveals.put(s.idHash, revealed{keyID: k.ID, name: k.Name, token: token, at: h.now()})
			http.Redirect(w, r, "/admin/keys/"+k.ID+"/reveal", http.StatusSeeOther)
			return
		}
		if !f.fieldError(err) {
			h.fail(w, r, s, err)
			return
		}
	}
	h.render(w, r, http.StatusUnprocessableEntity, "form", view{Title: "New key", User: s.email, Nav: "new", Data: formData{Form: f}})
}

type revealData struct {
	ID, Name, Token string
	Rolled          bool
}

// reveal shows a new key once. The plaintext is taken out of memory by
// this request: a reload, the back button or another tab finds nothing.
func (h *handler) reveal(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d := revealData{ID: id}
	if k, ok := h.reveals.take(s.idHash, id, h.now()); ok {
		d.Name, d.Token, d.Rolled = k.name, k.token, k.rolled
	}
	h.render(w, r, http.StatusOK, "reveal", view{Title: "Your new key", User: s.email, Nav: "keys", Data: d})
}

type keyData struct {
	Key   *apikey.Key
	Usage *usageView // on the key's page
	// PreviousUses counts the verifications with the key's previous
	// secret (a roll's grace window) over the last 24 hours, as flushed.
	PreviousUses int64
	// DefaultInactivity is the service's default inactivity expiry.
	DefaultInactivity time.Duration
}

func (h *handler) getKey(w http.ResponseWriter, r *http.Request, s *session) (*apikey.Key, bool) {
	k, err := h.m.Get(actor(r.Context(), s), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, s, err)
		return nil, false
	}
	return k, true
}

func (h *handler) showKey(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	u, err := h.usageOf(actor(r.Context(), s), []string{k.ID}, periodOf(r), "key-usage", "Verifications of "+k.Name)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := keyData{Key: k, Usage: u, DefaultInactivity: h.m.InactivityExpiry()}
	if k.PreviousSecret != nil {
		end := usageEnd(h.now())
		counts, err := h.m.Usage(actor(r.Context(), s), k.ID, end.Add(-24*time.Hour), end, apikey.ByHour)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, c := range counts {
			if c.Outcome == string(apikey.CodeValidPrevious) {
				d.PreviousUses += c.Count
			}
		}
	}
	h.render(w, r, http.StatusOK, "key", view{Title: k.Name, User: s.email, Nav: "keys", Data: d, Notice: notice(r.URL.Query())})
}

func (h *handler) editKeyForm(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	d := formData{Form: formFromKey(k), Key: k, ReadOnly: k.Revoked()}
	h.render(w, r, http.StatusOK, "form", view{Title: "Edit " + k.Name, User: s.email, Nav: "keys", Data: d})
}

func (h *handler) editKey(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	if k.Revoked() {
		f := formFromKey(k)
		f.Errors[""] = "This key is revoked: it can no longer be changed."
		d := formData{Form: f, Key: k, ReadOnly: true}
		h.render(w, r, http.StatusConflict, "form", view{Title: "Edit " + k.Name, User: s.email, Nav: "keys", Data: d})
		return
	}
	f := keyForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Owner: k.Owner, Scopes: r.PostFormValue("scopes"),
		ExpiresAt: r.PostFormValue("expires_at"), Metadata: r.PostFormValue("metadata"), Errors: map[string]string{},
		Environment:  string(k.Env()), // fixed at creation
		AllowedCIDRs: r.PostFormValue("allowed_cidrs"), InactivityExpiry: r.PostFormValue("inactivity_expiry"),
	}
	if f.Name == "" {
		f.Errors["name"] = "Enter a name."
	}
	now := h.m.Now()
	old := formFromKey(k)
	// The expiry is checked only when it changed: an expired key can be
	// renamed without moving its expiry.
	expiryChanged := strings.TrimSpace(f.ExpiresAt) != old.ExpiresAt
	p := f.parse(now)
	if !expiryChanged {
		delete(f.Errors, "expires_at")
	}
	if len(f.Errors) == 0 {
		var u apikey.KeyUpdate
		if f.Name != k.Name {
			u.Name = &f.Name
		}
		if !slices.Equal(apikey.NormalizeScopes(p.scopes), k.Scopes) {
			u.Scopes = &p.scopes
		}
		if !maps.Equal(p.metadata, k.Metadata) {
			u.Metadata = &p.metadata
		}
		if !slices.Equal(p.cidrs, k.AllowedCIDRs) {
			u.AllowedCIDRs = &p.cidrs
		}
		if p.inactivity != time.Duration(k.InactivityExpiry) {
			u.InactivityExpiry = &p.inactivity
		}
		if expiryChanged {
			if p.expiresAt == nil {
				u.ClearExpiry = true
			} else {
				u.ExpiresAt = p.expiresAt
			}
		}
		if u.Empty() {
			http.Redirect(w, r, "/admin/keys/"+k.ID, http.StatusSeeOther)
			return
		}
		_, err := h.m.Update(actor(r.Context(), s), k.ID, u)
		if err == nil {
			http.Redirect(w, r, "/admin/keys/"+k.ID+"?done=updated", http.StatusSeeOther)
			return
		}
		if !f.fieldError(err) {
			h.fail(w, r, s, err)
			return
		}
	}
	status := http.StatusUnprocessableEntity
	if f.Errors[""] != "" && len(f.Errors) == 1 {
		status = http.StatusConflict // revoked meanwhile
	}
	h.render(w, r, status, "form", view{Title: "Edit " + k.Name, User: s.email, Nav: "keys", Data: formData{Form: f, Key: k}})
}

type confirmData struct {
	Action  string // "revoke", "roll" or "bulk"
	Key     *apikey.Key
	Keys    []*apikey.Key
	Skipped int
	// Roll is the grace window of the roll form, as entered.
	Roll rollForm
}

// rollForm is the grace window of the roll form: durations as
// apikey.ParseGrace reads them, empty for none or the default.
type rollForm struct {
	Grace, GraceStarts, GraceMax string
	// Error says what is wrong with the entry; Field names the input.
	Error, Field string
}

// options returns the apikey.RollOptions of f, or sets f.Error.
func (f *rollForm) options() (apikey.RollOptions, bool) {
	var o apikey.RollOptions
	var err error
	fail := func(err error) (apikey.RollOptions, bool) {
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			f.Field = ve.Field
			f.Error = map[string]string{"grace": "Grace", "grace_starts": "Grace starts", "grace_max": "Longest grace"}[ve.Field] + ": " + ve.Reason + "."
		} else {
			f.Error = "The grace window is not valid."
		}
		return o, false
	}
	if f.Grace != "" {
		if o.Grace, err = apikey.ParseGrace("grace", f.Grace); err != nil {
			return fail(err)
		}
		switch f.GraceStarts {
		case "", "first_use", "now":
			o.GraceStarts = apikey.GraceStart(f.GraceStarts)
		default:
			return fail(&apikey.ValidationError{Field: "grace_starts", Reason: "must be first_use or now"})
		}
	}
	if f.GraceMax != "" {
		if o.GraceMax, err = apikey.ParseGrace("grace_max", f.GraceMax); err != nil {
			return fail(err)
		}
	}
	if _, err := o.Check(); err != nil {
		return fail(err)
	}
	return o, true
}

func (h *handler) revokeForm(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	if k.Revoked() {
		http.Redirect(w, r, "/admin/keys/"+k.ID, http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Revoke " + k.Name, User: s.email, Nav: "keys", Data: confirmData{Action: "revoke", Key: k}})
}

func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := h.m.Revoke(actor(r.Context(), s), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/keys/"+k.ID+"?done=revoked", http.StatusSeeOther)
}

func (h *handler) rollForm(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	if k.Revoked() {
		h.errorPage(w, r, s, http.StatusConflict, "Key revoked", "A revoked key cannot be regenerated.")
		return
	}
	h.render(w, r, http.StatusOK, "confirm", view{Title: "Regenerate " + k.Name, User: s.email, Nav: "keys", Data: confirmData{Action: "roll", Key: k}})
}

func (h *handler) rollKey(w http.ResponseWriter, r *http.Request, s *session) {
	f := rollForm{Grace: strings.TrimSpace(r.PostFormValue("grace")), GraceStarts: r.PostFormValue("grace_starts"),
		GraceMax: strings.TrimSpace(r.PostFormValue("grace_max"))}
	opts, ok := f.options()
	if !ok {
		k, found := h.getKey(w, r, s)
		if !found {
			return
		}
		h.render(w, r, http.StatusBadRequest, "confirm", view{Title: "Regenerate " + k.Name, User: s.email, Nav: "keys",
			Data: confirmData{Action: "roll", Key: k, Roll: f}})
		return
	}
	k, token, err := h.m.Roll(actor(r.Context(), s), r.PathValue("id"), opts)
	if err != nil { // a revoked key is apikey.ErrFrozen: 409
		h.fail(w, r, s, err)
		return
	}
	h.reveals.put(s.idHash, revealed{keyID: k.ID, name: k.Name, token: token, rolled: true, at: h.now()})
	http.Redirect(w, r, "/admin/keys/"+k.ID+"/reveal", http.StatusSeeOther)
}

// disableKey disables a key (a reversible stop) and shows it.
func (h *handler) disableKey(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := h.m.Disable(actor(r.Context(), s), r.PathValue("id"))
	if err != nil { // a revoked key is apikey.ErrFrozen: 409
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/keys/"+k.ID+"?done=disabled", http.StatusSeeOther)
}

// enableKey enables a disabled key and shows it.
func (h *handler) enableKey(w http.ResponseWriter, r *http.Request, s *session) {
	k, err := h.m.Enable(actor(r.Context(), s), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/keys/"+k.ID+"?done=enabled", http.StatusSeeOther)
}

// maxBulk bounds the keys revoked by one bulk request.
const maxBulk = apikey.MaxPageSize

// bulkRevoke shows a confirmation of the selected keys, and revokes them
// when the confirmation is posted (confirm=yes).
func (h *handler) bulkRevoke(w http.ResponseWriter, r *http.Request, s *session) {
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, s, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	ids := slices.Compact(slices.Sorted(slices.Values(r.PostForm["id"])))
	ids = slices.DeleteFunc(ids, func(id string) bool { return !apikey.ValidID(id) })
	if len(ids) == 0 {
		http.Redirect(w, r, "/admin/keys?done=none", http.StatusSeeOther)
		return
	}
	if len(ids) > maxBulk {
		h.errorPage(w, r, s, http.StatusBadRequest, "Too many keys", "Select at most "+strconv.Itoa(maxBulk)+" keys at a time.")
		return
	}
	ctx := actor(r.Context(), s)
	if r.PostFormValue("confirm") != "yes" {
		d := confirmData{Action: "bulk"}
		for _, id := range ids {
			k, err := h.m.Get(ctx, id)
			switch {
			case errors.Is(err, apikey.ErrNotFound):
				d.Skipped++
			case err != nil:
				h.fail(w, r, s, err)
				return
			case k.Revoked():
				d.Skipped++
			default:
				d.Keys = append(d.Keys, k)
			}
		}
		if len(d.Keys) == 0 {
			http.Redirect(w, r, "/admin/keys?done=bulk&n=0", http.StatusSeeOther)
			return
		}
		h.render(w, r, http.StatusOK, "confirm", view{Title: "Revoke keys", User: s.email, Nav: "keys", Data: d})
		return
	}
	n := 0
	for _, id := range ids {
		k, err := h.m.Revoke(ctx, id)
		switch {
		case errors.Is(err, apikey.ErrNotFound):
		case err != nil:
			h.fail(w, r, s, err)
			return
		case k.RevokedAt != nil:
			n++
		}
	}
	http.Redirect(w, r, "/admin/keys?done=bulk&n="+strconv.Itoa(n), http.StatusSeeOther)
}

type eventsData struct {
	KeyID, Actor, Type string
	Types              []apikey.EventType
	Errors             map[string]string
	Events             []*apikey.Event
	NextURL            string
	Paged              bool
}

func (h *handler) listEvents(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := eventsData{
		KeyID: strings.TrimSpace(q.Get("key_id")), Actor: strings.TrimSpace(q.Get("actor")), Type: q.Get("type"),
		Types: apikey.AuditedEventTypes(), Errors: map[string]string{}, Paged: q.Get("cursor") != "",
	}
	f := apikey.EventFilter{KeyID: d.KeyID, Actor: d.Actor, Type: apikey.EventType(d.Type), Cursor: q.Get("cursor"), Limit: h.pageSize}
	status := http.StatusOK
	p, err := h.m.Events(actor(r.Context(), s), f)
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		field := map[string]string{"type": "type", "key_id": "key_id", "actor": "actor"}[ve.Field]
		d.Errors[field] = sentence(ve.Reason)
		status = http.StatusBadRequest
	case err != nil:
		h.fail(w, r, s, err)
		return
	default:
		d.Events = p.Events
		if p.NextCursor != "" {
			v := url.Values{"cursor": {p.NextCursor}}
			for name, val := range map[string]string{"key_id": d.KeyID, "actor": d.Actor, "type": d.Type} {
				if val != "" {
					v.Set(name, val)
				}
			}
			d.NextURL = "/admin/events?" + v.Encode()
		}
	}
	h.render(w, r, status, "events", view{Title: "Audit log", User: s.email, Nav: "events", Data: d})
}
