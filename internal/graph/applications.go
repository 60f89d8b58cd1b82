package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

var (
	applicationListQuery = querySpec{collection: true, resource: "Application",
		filterable: applicationFilter, selectable: applicationProperties, advanced: true, searchable: applicationSearch, orderable: applicationOrder}
	applicationGetQuery = querySpec{resource: "Application", selectable: applicationProperties}
)

// loadApplication finds the application the path names, by object id or
// by (appId='…'), in the caller's tenant only, and enforces ownership for
// callers that may act only on what they own. dir is h.dir for reads and
// the transaction for changes, so the check and the change agree.
func (h *Handler) loadApplication(rq *request, dir *directory.Service) (*directory.Application, error) {
	id := normalizeID(rq.pathID("id"))
	var app *directory.Application
	var err error
	if rq.path.byAppID {
		app, err = dir.ApplicationByAppID(rq.ctx, id)
		if err == nil && app.TenantID != rq.tenant() {
			err = directory.ErrNotFound // another tenant's application is not there for this caller
		}
	} else {
		app, err = dir.GetApplication(rq.ctx, rq.tenant(), id)
	}
	if errors.Is(err, directory.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	rq.target = app.ID
	if rq.access == selfOnly && !strings.EqualFold(app.AppID, rq.caller.claims.ClientID()) {
		return nil, errDenied
	}
	if err := h.checkOwned(rq, dir, app.ID); err != nil {
		return nil, err
	}
	return app, nil
}

// checkOwned refuses a caller with owned-only access that does not own
// the object. Graph answers 403 here (not 404): the object is in the
// caller's own tenant, only out of its reach.
func (h *Handler) checkOwned(rq *request, dir *directory.Service, objectID string) error {
	if rq.access != ownedOnly {
		return nil
	}
	owns, err := dir.IsOwner(rq.ctx, rq.tenant(), objectID, rq.caller.objectID)
	if err != nil {
		return err
	}
	if !owns {
		return errDenied
	}
	return nil
}

// applicationObject is loadApplication for the shared owners endpoints.
func (h *Handler) applicationObject(rq *request, dir *directory.Service) (string, error) {
	app, err := h.loadApplication(rq, dir)
	if err != nil {
		return "", err
	}
	return app.ID, nil
}

// ownedIDs narrows a list query to what an owned-only caller owns. It
// reports false when nothing can match (the caller owns nothing, or the
// filter names an id it does not own); the caller then answers an empty
// page, since an empty IDs list would mean "no filter" to the store.
func (h *Handler) ownedIDs(rq *request, q *directory.Query) (bool, error) {
	if rq.access != ownedOnly {
		return true, nil
	}
	owned, err := h.dir.OwnedObjects(rq.ctx, rq.tenant(), rq.caller.objectID)
	if err != nil {
		return false, err
	}
	if len(q.IDs) > 0 {
		owned = slices.DeleteFunc(owned, func(id string) bool { return !slices.Contains(q.IDs, id) })
	}
	q.IDs = owned
	return len(owned) > 0, nil
}

func (h *Handler) listApplications(rq *request) error {
	return listCollection(h, rq, "applications", applicationListQuery, true,
		func(q directory.Query) ([]*directory.Application, error) {
			return h.dir.ListApplications(rq.ctx, rq.tenant(), q)
		},
		func(a *directory.Application) (string, any) { return a.ID, applicationToView(a) })
}

func (h *Handler) getApplication(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, applicationGetQuery)
	if err != nil {
		return err
	}
	app, err := h.loadApplication(rq, h.dir)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, "applications", opts.sel, applicationToView(app))
}

// createApplication registers an application in the caller's tenant. A
// caller with owned-only access becomes its owner in the same transaction,
// as in Entra, so that it can manage what it created.
func (h *Handler) createApplication(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	in, err := decodeApplication(body)
	if err != nil {
		return err
	}
	var raw applicationInput
	if err := decodeBody(body, &raw, applicationReadOnly); err != nil {
		return err
	}
	keys, err := h.keyCredentialsFrom(raw.KeyCredentials, nil)
	if err != nil {
		return err
	}
	var created *directory.Application
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := tx.CreateApplication(rq.ctx, rq.tenant(), in)
		if err != nil {
			return "", err
		}
		if len(keys) > 0 {
			// One write for them all, as PATCH keyCredentials makes
			// (keyCredentialsFrom has checked their number and duplicates).
			app, err = tx.UpdateApplication(rq.ctx, rq.tenant(), app.ID, func(a *directory.Application) error {
				a.KeyCredentials = keys
				return nil
			})
			if err != nil {
				return "", err
			}
		}
		if rq.access == ownedOnly {
			if err := tx.AddOwner(rq.ctx, rq.tenant(), app.ID, rq.caller.objectID); err != nil {
				return "", err
			}
		}
		created = app
		return app.ID, nil
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "applications", nil, applicationToView(created))
}

func (h *Handler) updateApplication(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in applicationInput
	if err := decodeBody(body, &in, applicationReadOnly); err != nil {
		return err
	}
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		keys, err := h.keyCredentialsFrom(in.KeyCredentials, app.KeyCredentials)
		if err != nil {
			return "", err
		}
		_, err = tx.UpdateApplication(rq.ctx, rq.tenant(), app.ID, func(a *directory.Application) error {
			if in.KeyCredentials != nil {
				a.KeyCredentials = keys
			}
			return in.applyTo(a)
		})
		return app.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) deleteApplication(rq *request) error {
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		return app.ID, tx.DeleteApplication(rq.ctx, rq.tenant(), app.ID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

// passwordOptions reads an addPassword body (which may be absent: Graph
// then uses its defaults).
func passwordOptions(rq *request) (displayName string, start, end time.Time, err error) {
	body, err := readBody(rq, true)
	if err != nil || body == nil {
		return "", start, end, err
	}
	var in addPasswordInput
	if err := decodeBody(body, &in, nil); err != nil {
		return "", start, end, err
	}
	if pc := in.PasswordCredential; pc != nil {
		if err := checkDateRange("startDateTime", pc.StartDateTime); err != nil {
			return "", start, end, err
		}
		if err := checkDateRange("endDateTime", pc.EndDateTime); err != nil {
			return "", start, end, err
		}
		displayName = deref(pc.DisplayName)
		if pc.StartDateTime != nil {
			start = *pc.StartDateTime
		}
		if pc.EndDateTime != nil {
			end = *pc.EndDateTime
		}
	}
	return displayName, start, end, nil
}

// writeSecret answers addPassword: the one response that carries a
// secret's text, so it must not be cached anywhere.
func (h *Handler) writeSecret(rq *request, cred directory.PasswordCredential) error {
	rq.w.Header().Set("Cache-Control", "no-store")
	rq.w.Header().Set("Pragma", "no-cache")
	return h.writeValue(rq, "microsoft.graph.passwordCredential", passwordToView(cred, true))
}

func (h *Handler) addApplicationPassword(rq *request) error {
	name, start, end, err := passwordOptions(rq)
	if err != nil {
		return err
	}
	var cred directory.PasswordCredential
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		cred, err = tx.AddApplicationPassword(rq.ctx, rq.tenant(), app.ID, name, start, end)
		return app.ID, err
	})
	if err != nil {
		return err
	}
	return h.writeSecret(rq, cred)
}

// readKeyID reads a removePassword or removeKey body: the keyId, lower
// case, and the proof removeKey takes.
func readKeyID(rq *request) (string, *string, error) {
	body, err := readBody(rq, false)
	if err != nil {
		return "", nil, err
	}
	var in removeCredentialInput
	if err := decodeBody(body, &in, nil); err != nil {
		return "", nil, err
	}
	if !validID(in.KeyID) {
		return "", nil, badRequest("Property 'keyId' must be a GUID.")
	}
	return strings.ToLower(in.KeyID), in.Proof, nil
}

// removeApplicationCredential answers removePassword and removeKey, which
// differ in which kind of credential the keyId names and in that removeKey
// takes the proof of possession of a valid certificate (verifyProof), as
// Graph's removeKey demands.
func (h *Handler) removeApplicationCredential(remove func(tx *directory.Service, ctx context.Context, tenantID, appID, keyID string) error,
	needsProof bool) func(*request) error {
	return func(rq *request) error {
		keyID, proof, err := readKeyID(rq)
		if err != nil {
			return err
		}
		err = h.change(rq, func(tx *directory.Service) (string, error) {
			app, err := h.loadApplication(rq, tx)
			if err != nil {
				return "", err
			}
			if needsProof {
				if err := verifyProof(proof, app, h.dir.Now()); err != nil {
					return "", err
				}
			}
			return app.ID, remove(tx, rq.ctx, rq.tenant(), app.ID, keyID)
		})
		if err != nil {
			return err
		}
		return noContent(rq)
	}
}

// addApplicationKey adds a certificate the application may sign client
// assertions with, on the proof of possession of a certificate it already
// has (verifyProof); the certificate itself must parse and must not have
// expired.
func (h *Handler) addApplicationKey(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in addKeyInput
	if err := decodeBody(body, &in, nil); err != nil {
		return err
	}
	kc, err := h.newKeyCredential(in)
	if err != nil {
		return err
	}
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		if err := verifyProof(in.Proof, app, h.dir.Now()); err != nil {
			return "", err
		}
		kc, err = tx.AddApplicationKey(rq.ctx, rq.tenant(), app.ID, kc)
		return app.ID, err
	})
	if err != nil {
		return err
	}
	return h.writeValue(rq, "microsoft.graph.keyCredential", keyToView(kc))
}

// newKeyCredential checks an addKey body and builds the credential.
func (h *Handler) newKeyCredential(in addKeyInput) (directory.KeyCredential, error) {
	k := in.KeyCredential
	switch {
	case k == nil:
		return directory.KeyCredential{}, badRequest("Property 'keyCredential' is required.")
	case len(in.PasswordCredential) > 0 && string(in.PasswordCredential) != "null":
		return directory.KeyCredential{}, badRequest("Only verification keys are supported: 'passwordCredential' must be null.")
	case k.Type != "AsymmetricX509Cert":
		return directory.KeyCredential{}, badRequest("Property 'keyCredential.type' must be AsymmetricX509Cert.")
	case k.Usage != "Verify":
		return directory.KeyCredential{}, badRequest("Property 'keyCredential.usage' must be Verify.")
	case len(k.Key) == 0:
		return directory.KeyCredential{}, badRequest("Property 'keyCredential.key' is required.")
	}
	der := k.Key
	if bytes.HasPrefix(bytes.TrimSpace(der), []byte("-----BEGIN")) {
		block, _ := pem.Decode(der)
		if block == nil || block.Type != "CERTIFICATE" {
			return directory.KeyCredential{}, badRequest("Property 'keyCredential.key' must hold a certificate.")
		}
		der = block.Bytes
	}
	var start, end time.Time
	if k.StartDateTime != nil {
		start = *k.StartDateTime
	}
	if k.EndDateTime != nil {
		end = *k.EndDateTime
	}
	kc, err := directory.NewKeyCredential(der, deref(k.DisplayName), start, end)
	if err != nil {
		return kc, err
	}
	if !kc.EndDateTime.After(h.dir.Now()) {
		return kc, badRequest("The certificate has expired; its key credential cannot be added.")
	}
	if !kc.EndDateTime.After(kc.StartDateTime) {
		return kc, badRequest("Key credential endDateTime must be later than startDateTime.")
	}
	return kc, nil
}

// maxKeyCredentials is the most certificates an application holds.
const maxKeyCredentials = 100

// keyCredentialsFrom reads the keyCredentials of a POST or PATCH body
// (nil: absent, nothing changes) into the collection that replaces
// existing. An item that names an existing keyId without a key keeps that
// credential (a client sends back what it read, where key is null); every
// other item is a certificate, checked as addKey checks one. The same
// certificate twice is a 400.
func (h *Handler) keyCredentialsFrom(in *[]keyCredentialInput, existing []directory.KeyCredential) ([]directory.KeyCredential, error) {
	if in == nil {
		return nil, nil
	}
	if len(*in) > maxKeyCredentials {
		return nil, badRequest("An application may hold at most %d key credentials.", maxKeyCredentials)
	}
	out := []directory.KeyCredential{}
	seen := map[string]bool{}
	for i, k := range *in {
		var keyID string
		if len(k.KeyID) > 0 && string(k.KeyID) != "null" {
			if err := json.Unmarshal(k.KeyID, &keyID); err != nil || !validID(keyID) {
				return nil, badRequest("Property 'keyCredentials[%d].keyId' must be a GUID.", i)
			}
			keyID = strings.ToLower(keyID)
		}
		var kc directory.KeyCredential
		if len(k.Key) == 0 && keyID != "" {
			j := slices.IndexFunc(existing, func(e directory.KeyCredential) bool { return strings.EqualFold(e.KeyID, keyID) })
			if j < 0 {
				return nil, badRequest("Property 'keyCredentials[%d].key' is required: no key credential has keyId %s.", i, keyID)
			}
			kc = existing[j]
		} else {
			var err error
			if kc, err = h.newKeyCredential(addKeyInput{KeyCredential: &k}); err != nil {
				return nil, err
			}
			if keyID != "" {
				kc.KeyID = keyID
			}
		}
		if seen[kc.KeyID] || seen[kc.CustomKeyIdentifier] {
			return nil, badRequest("keyCredentials holds the same key credential twice.")
		}
		seen[kc.KeyID], seen[kc.CustomKeyIdentifier] = true, true
		out = append(out, kc)
	}
	return out, nil
}

// ---- federated identity credentials ----

// ficSet is the @odata.context set of an application's federated credentials.
func ficSet(appID string) string {
	return "applications('" + appID + "')/federatedIdentityCredentials"
}

var (
	ficListQuery = querySpec{collection: true, resource: "FederatedIdentityCredential", selectable: federatedCredentialProperties}
	ficGetQuery  = querySpec{resource: "FederatedIdentityCredential", selectable: federatedCredentialProperties}
)

func (h *Handler) listFederatedCredentials(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, ficListQuery)
	if err != nil {
		return err
	}
	app, err := h.loadApplication(rq, h.dir)
	if err != nil {
		return err
	}
	var p page
	var creds []directory.FederatedIdentityCredential
	creds, p.more = pageOf(app.FederatedCredentials, func(f directory.FederatedIdentityCredential) string { return f.ID }, opts)
	for _, f := range creds {
		if err := p.add(f.ID, federatedCredentialToView(f)); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, ficSet(app.ID), opts, p)
}

// findFederatedCredential finds a credential by id or name, as Graph's
// /federatedIdentityCredentials/{id-or-name} does.
func findFederatedCredential(app *directory.Application, ref string) (directory.FederatedIdentityCredential, bool) {
	i := slices.IndexFunc(app.FederatedCredentials, func(f directory.FederatedIdentityCredential) bool {
		return strings.EqualFold(f.ID, ref) || strings.EqualFold(f.Name, ref)
	})
	if i < 0 {
		return directory.FederatedIdentityCredential{}, false
	}
	return app.FederatedCredentials[i], true
}

func (h *Handler) getFederatedCredential(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, ficGetQuery)
	if err != nil {
		return err
	}
	app, err := h.loadApplication(rq, h.dir)
	if err != nil {
		return err
	}
	f, ok := findFederatedCredential(app, rq.pathID("ref"))
	if !ok {
		return notFound(rq.pathID("ref"))
	}
	return h.writeEntity(rq, http.StatusOK, ficSet(app.ID), opts.sel, federatedCredentialToView(f))
}

// createFederatedCredential adds a federated credential. Duplicates are
// checked here, inside the change's transaction, to give Graph's two
// distinct answers: a taken name is a 409, a taken issuer and subject a 400.
func (h *Handler) createFederatedCredential(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in federatedCredentialInput
	if err := decodeBody(body, &in, []string{"id"}); err != nil {
		return err
	}
	var f directory.FederatedIdentityCredential
	in.applyTo(&f)
	var appID string
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		appID = app.ID
		for _, e := range app.FederatedCredentials {
			if strings.EqualFold(e.Name, f.Name) {
				return "", duplicateKey("FederatedIdentityCredential with name %s already exists.", f.Name)
			}
			if e.Issuer == f.Issuer && e.Subject == f.Subject {
				return "", badRequest("The combination of issuer and subject must be unique for the application.")
			}
		}
		f, err = tx.AddFederatedCredential(rq.ctx, rq.tenant(), app.ID, f)
		return app.ID, err
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, ficSet(appID), nil, federatedCredentialToView(f))
}

func (h *Handler) updateFederatedCredential(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in federatedCredentialInput
	if err := decodeBody(body, &in, []string{"id", "name"}); err != nil {
		return err
	}
	ref := rq.pathID("ref")
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		_, err = tx.UpdateFederatedCredential(rq.ctx, rq.tenant(), app.ID, ref, in.applyTo)
		if errors.Is(err, directory.ErrNotFound) {
			return "", notFound(ref)
		}
		return app.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) deleteFederatedCredential(rq *request) error {
	ref := rq.pathID("ref")
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		app, err := h.loadApplication(rq, tx)
		if err != nil {
			return "", err
		}
		err = tx.RemoveFederatedCredential(rq.ctx, rq.tenant(), app.ID, ref)
		if errors.Is(err, directory.ErrNotFound) {
			return "", notFound(ref)
		}
		return app.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}
