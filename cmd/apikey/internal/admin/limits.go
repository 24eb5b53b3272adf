package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/limitspec"
)

// limitsForm is the form of the rate limits and credits of a key or an
// owner, as typed.
type limitsForm struct {
	// RateLimits holds one limit per line in the syntax of
	// limitspec.ParseRateLimit.
	RateLimits string
	// Credits is the balance; empty for none.
	Credits string
	// Refill is the refill schedule in the syntax of
	// limitspec.ParseRefill; empty for none.
	Refill string
	Errors map[string]string
}

// limitsData is what the limits page and the owner page show.
type limitsData struct {
	Key      *apikey.Key // the key whose limits are edited; nil for an owner
	Owner    string      // the owner, for an owner's page
	Record   *apikey.Owner
	Form     limitsForm
	Action   string // where the form posts
	ReadOnly bool
	// Syntax examples.
	RateLimitSyntax, RefillSyntax string
	// The keys of an owner and their usage, on an owner's page.
	Keys        []*apikey.Key
	KeysPartial bool
	Usage       *usageView
}

func formFromLimits(limits []apikey.RateLimit, c *apikey.Credits) limitsForm {
	f := limitsForm{Errors: map[string]string{}}
	lines := make([]string, len(limits))
	for i, l := range limits {
		lines[i] = limitspec.FormatRateLimit(l)
	}
	f.RateLimits = strings.Join(lines, "\n")
	if c != nil {
		f.Credits = strconv.FormatInt(c.Remaining, 10)
		if c.Refill != nil {
			f.Refill = limitspec.FormatRefill(*c.Refill)
		}
	}
	return f
}

// parse reads the form. It returns the limits, and the credits when the
// credits or the refill fields differ from old (the form as the record
// was): changed reports whether they did, and a nil credits then means
// none. It fills f.Errors.
func (f *limitsForm) parse(old limitsForm) (limits []apikey.RateLimit, credits *apikey.Credits, changed bool) {
	limits = []apikey.RateLimit{}
	seen := map[string]bool{}
	for i, line := range strings.Split(f.RateLimits, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		l, err := limitspec.ParseRateLimit(line)
		if err != nil {
			f.Errors["ratelimits"] = "Line " + strconv.Itoa(i+1) + ": " + sentence(err.Error()) + " Write NAME=LIMIT/PERIOD, such as requests=100/1m,burst=20."
			break
		}
		if seen[l.Name] {
			f.Errors["ratelimits"] = "Line " + strconv.Itoa(i+1) + ": the limit " + strconv.Quote(l.Name) + " is given twice."
			break
		}
		seen[l.Name] = true
		limits = append(limits, l)
	}
	f.Credits, f.Refill = strings.TrimSpace(f.Credits), strings.TrimSpace(f.Refill)
	if f.Credits == old.Credits && f.Refill == old.Refill {
		return limits, nil, false
	}
	if f.Credits == "" {
		if f.Refill != "" {
			f.Errors["credits"] = "Enter a balance for the refill to apply to, or clear the refill too."
		}
		return limits, nil, true
	}
	n, err := strconv.ParseInt(f.Credits, 10, 64)
	if err != nil || n < 0 {
		f.Errors["credits"] = "Enter a whole number of 0 or more, or leave it empty for no credit limit."
		return limits, nil, true
	}
	credits = &apikey.Credits{Remaining: n}
	if f.Refill != "" {
		r, err := limitspec.ParseRefill(f.Refill, n)
		if err != nil {
			f.Errors["refill"] = sentence(err.Error()) + " Write daily, monthly:DAY or a duration such as 12h, each optionally followed by :AMOUNT."
			return limits, nil, true
		}
		credits.Refill = r
	}
	return limits, credits, true
}

// fieldError puts a validation error of the Manager on its field and
// reports whether it did.
func (f *limitsForm) fieldError(err error) bool {
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		switch ve.Field {
		case "ratelimits", "credits":
			f.Errors[ve.Field] = sentence(ve.Reason)
		default:
			f.Errors[""] = sentence(ve.Field + ": " + ve.Reason)
		}
		return true
	case errors.Is(err, apikey.ErrFrozen):
		f.Errors[""] = "This key is revoked: it can no longer be changed."
		return true
	}
	return false
}

func (h *handler) keyLimitsForm(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	d := h.keyLimitsData(k)
	d.Form = formFromLimits(k.RateLimits, k.Credits)
	h.render(w, r, http.StatusOK, "limits", view{Title: "Limits of " + k.Name, User: s.email, Nav: "keys", Data: d})
}

func (h *handler) keyLimitsData(k *apikey.Key) limitsData {
	return limitsData{Key: k, Action: "/admin/keys/" + k.ID + "/limits", ReadOnly: k.Revoked(),
		RateLimitSyntax: limitspec.RateLimitSyntax, RefillSyntax: limitspec.RefillSyntax}
}

func (h *handler) editKeyLimits(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	d := h.keyLimitsData(k)
	d.Form = limitsForm{RateLimits: r.PostFormValue("ratelimits"), Credits: r.PostFormValue("credits"), Refill: r.PostFormValue("refill"),
		Errors: map[string]string{}}
	status := http.StatusUnprocessableEntity
	if k.Revoked() {
		d.Form.Errors[""] = "This key is revoked: it can no longer be changed."
		h.render(w, r, http.StatusConflict, "limits", view{Title: "Limits of " + k.Name, User: s.email, Nav: "keys", Data: d})
		return
	}
	limits, credits, changed := d.Form.parse(formFromLimits(k.RateLimits, k.Credits))
	if len(d.Form.Errors) == 0 {
		u := apikey.KeyUpdate{RateLimits: &limits}
		if changed {
			u.Credits, u.ClearCredits = credits, credits == nil
		}
		_, err := h.m.Update(actor(r.Context(), s), k.ID, u)
		if err == nil {
			http.Redirect(w, r, "/admin/keys/"+k.ID+"?done=limits", http.StatusSeeOther)
			return
		}
		if !d.Form.fieldError(err) {
			h.fail(w, r, s, err)
			return
		}
		if errors.Is(err, apikey.ErrFrozen) {
			status = http.StatusConflict
		}
	}
	h.render(w, r, status, "limits", view{Title: "Limits of " + k.Name, User: s.email, Nav: "keys", Data: d})
}

// creditsOp reads the adjustment form: op set or add, and an amount.
func creditsOp(r *http.Request) (apikey.CreditAdjustment, string) {
	adj := apikey.CreditAdjustment{Op: apikey.CreditOp(r.PostFormValue("op"))}
	if adj.Op != apikey.CreditSet && adj.Op != apikey.CreditAdd {
		return adj, "Choose set or add."
	}
	n, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("amount")), 10, 64)
	if err != nil || (adj.Op == apikey.CreditSet && n < 0) {
		return adj, "Enter a whole number (0 or more to set; add takes a negative one to take away)."
	}
	adj.Amount = n
	return adj, ""
}

// adjustKeyCredits serves the set/add form of a key's page.
func (h *handler) adjustKeyCredits(w http.ResponseWriter, r *http.Request, s *session) {
	k, ok := h.getKey(w, r, s)
	if !ok {
		return
	}
	adj, problem := creditsOp(r)
	adj.KeyID = k.ID
	if problem == "" {
		_, err := h.m.AdjustCredits(actor(r.Context(), s), adj)
		switch {
		case err == nil:
			http.Redirect(w, r, "/admin/keys/"+k.ID+"?done=credits", http.StatusSeeOther)
			return
		case errors.Is(err, apikey.ErrInvalidInput):
			problem = "The balance cannot go below zero."
		default:
			h.fail(w, r, s, err)
			return
		}
	}
	h.errorPage(w, r, s, http.StatusUnprocessableEntity, "Credits not changed", problem)
}

func ownerPath(owner string) string { return "/admin/owners/" + url.PathEscape(owner) }

func (h *handler) ownerData(owner string, o *apikey.Owner) limitsData {
	d := limitsData{Owner: owner, Record: o, Action: ownerPath(owner), RateLimitSyntax: limitspec.RateLimitSyntax, RefillSyntax: limitspec.RefillSyntax}
	if o != nil {
		d.Form = formFromLimits(o.RateLimits, o.Credits)
	} else {
		d.Form = limitsForm{Errors: map[string]string{}}
	}
	return d
}

// owner returns the record of the owner of the path; nil when it has none.
func (h *handler) owner(w http.ResponseWriter, r *http.Request, s *session) (string, *apikey.Owner, bool) {
	id := r.PathValue("owner")
	o, err := h.m.Owner(actor(r.Context(), s), id)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return id, nil, true
	case errors.Is(err, apikey.ErrInvalidInput):
		h.errorPage(w, r, s, http.StatusNotFound, "Owner not found", "This is not a valid owner.")
		return "", nil, false
	case err != nil:
		h.fail(w, r, s, err)
		return "", nil, false
	}
	return id, o, true
}

func (h *handler) showOwner(w http.ResponseWriter, r *http.Request, s *session) {
	id, o, ok := h.owner(w, r, s)
	if !ok {
		return
	}
	d := h.ownerData(id, o)
	var err error
	if d.Keys, d.KeysPartial, d.Usage, err = h.ownerKeys(actor(r.Context(), s), r, id); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "owner", view{Title: "Owner " + id, User: s.email, Nav: "keys", Data: d, Notice: notice(r.URL.Query())})
}

func (h *handler) editOwner(w http.ResponseWriter, r *http.Request, s *session) {
	id, o, ok := h.owner(w, r, s)
	if !ok {
		return
	}
	d := h.ownerData(id, o)
	old := d.Form
	d.Form = limitsForm{RateLimits: r.PostFormValue("ratelimits"), Credits: r.PostFormValue("credits"), Refill: r.PostFormValue("refill"),
		Errors: map[string]string{}}
	limits, credits, changed := d.Form.parse(old)
	if len(d.Form.Errors) == 0 {
		u := apikey.OwnerUpdate{RateLimits: &limits}
		if changed {
			u.Credits, u.ClearCredits = credits, credits == nil
		}
		_, err := h.m.SetOwner(actor(r.Context(), s), id, u)
		if err == nil {
			http.Redirect(w, r, ownerPath(id)+"?done=owner", http.StatusSeeOther)
			return
		}
		if !d.Form.fieldError(err) {
			h.fail(w, r, s, err)
			return
		}
	}
	h.render(w, r, http.StatusUnprocessableEntity, "owner", view{Title: "Owner " + id, User: s.email, Nav: "keys", Data: d})
}

func (h *handler) adjustOwnerCredits(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("owner")
	adj, problem := creditsOp(r)
	adj.Owner = id
	if problem == "" {
		_, err := h.m.AdjustCredits(actor(r.Context(), s), adj)
		switch {
		case err == nil:
			http.Redirect(w, r, ownerPath(id)+"?done=credits", http.StatusSeeOther)
			return
		case errors.Is(err, apikey.ErrInvalidInput):
			problem = "The balance cannot go below zero, and the owner must be valid."
		default:
			h.fail(w, r, s, err)
			return
		}
	}
	h.errorPage(w, r, s, http.StatusUnprocessableEntity, "Credits not changed", problem)
}

// deleteOwner deletes the record of an owner (its limits and credits);
// its keys stay.
func (h *handler) deleteOwner(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("owner")
	err := h.m.DeleteOwner(actor(r.Context(), s), id)
	switch {
	case err == nil:
		http.Redirect(w, r, ownerPath(id)+"?done=owner-deleted", http.StatusSeeOther)
	case errors.Is(err, apikey.ErrNotFound):
		h.errorPage(w, r, s, http.StatusNotFound, "Nothing to delete", "This owner has no limits or credits of its own.")
	case errors.Is(err, apikey.ErrInvalidInput):
		h.errorPage(w, r, s, http.StatusNotFound, "Owner not found", "This is not a valid owner.")
	default:
		h.fail(w, r, s, err)
	}
}

// findOwner sends the owner search box to the owner's page.
func (h *handler) findOwner(w http.ResponseWriter, r *http.Request, s *session) {
	owner := strings.TrimSpace(r.URL.Query().Get("owner"))
	if owner == "" {
		http.Redirect(w, r, "/admin/keys", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, ownerPath(owner), http.StatusSeeOther)
}
