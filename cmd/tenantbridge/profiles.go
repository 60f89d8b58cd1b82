package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// profilesFile is the CLI's sign-in store in the data directory: named
// service-principal credentials, several per tenant, one of which is the
// tenant's default. It holds secrets, so it is 0600 and replaced
// atomically.
const profilesFile = "profiles.json"

// Profile is a saved sign-in to one tenant.
type Profile struct {
	// Name is how commands choose the profile (--profile, account set
	// --name): unique in the store, matched exactly.
	Name           string `json:"name"`
	TenantID       string `json:"tenantId"`
	TenantName     string `json:"tenantName,omitempty"`
	Domain         string `json:"domain,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	// Bootstrap marks the administrator tenant create made: the sign-in a
	// tenant cannot be administered without, which login never replaces.
	Bootstrap bool      `json:"bootstrap,omitempty"`
	Saved     time.Time `json:"saved"`
}

// name is how a profile's tenant is shown: its name, else domain, else id.
func (p Profile) name() string {
	switch {
	case p.TenantName != "":
		return p.TenantName
	case p.Domain != "":
		return p.Domain
	}
	return p.TenantID
}

// matches reports whether ref (a tenant name, domain or id) names p's tenant.
func (p Profile) matches(ref string) bool {
	ref = strings.ToLower(strings.TrimSpace(ref))
	return ref != "" && (ref == strings.ToLower(p.TenantID) || ref == strings.ToLower(p.TenantName) ||
		ref == strings.ToLower(p.Domain) || ref+".onmicrosoft.com" == strings.ToLower(p.Domain))
}

// describe names the profile for a message: "contoso (the bootstrap
// administrator of contoso)" or "ci (client 1234… in contoso)".
func (p Profile) describe() string {
	if p.Bootstrap {
		return fmt.Sprintf("%s (the bootstrap administrator of %s)", p.Name, p.name())
	}
	return fmt.Sprintf("%s (client %s in %s)", p.Name, p.ClientID, p.name())
}

// profileStore is profiles.json. Profiles are keyed by name. Defaults maps
// a tenant id to the name of the profile that --tenant selects; Active
// names the profile commands use without --tenant (account set).
//
// The first version of the file keyed one profile per tenant by tenant
// id, without names; loadProfiles migrates it.
type profileStore struct {
	Profiles map[string]Profile `json:"profiles"`
	Defaults map[string]string  `json:"defaults,omitempty"`
	Active   string             `json:"active,omitempty"`
}

func (c *cli) profilesPath() string { return filepath.Join(c.dataDir, profilesFile) }

// loadProfiles reads the profile store; a missing file is an empty store.
func (c *cli) loadProfiles() (profileStore, error) {
	s := profileStore{Profiles: map[string]Profile{}, Defaults: map[string]string{}}
	data, err := os.ReadFile(c.profilesPath())
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading profiles: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("profiles file %s is malformed: %v", c.profilesPath(), err)
	}
	if s.Profiles == nil {
		s.Profiles = map[string]Profile{}
	}
	if s.Defaults == nil {
		s.Defaults = map[string]string{}
	}
	s.migrate()
	for key, p := range s.Profiles {
		if key != p.Name || p.TenantID == "" || p.ClientID == "" {
			return s, fmt.Errorf("profiles file %s is malformed: profile %q lacks its name, tenant or client", c.profilesPath(), key)
		}
	}
	return s, nil
}

// migrate names the profiles of the first version of the file (keyed by
// tenant id, without a name) after their tenant and makes each its
// tenant's default, which it was. Whether one was the bootstrap
// administrator that file did not say, so none is marked as one.
func (s *profileStore) migrate() {
	var old []Profile
	for key, p := range s.Profiles {
		if p.Name == "" {
			if p.TenantID == "" {
				p.TenantID = key
			}
			old = append(old, p)
			delete(s.Profiles, key)
		}
	}
	slices.SortFunc(old, func(a, b Profile) int { return strings.Compare(a.TenantID, b.TenantID) })
	for _, p := range old {
		p.Name = s.freeName(profileBaseName(p.name()))
		s.Profiles[p.Name] = p
		if _, ok := s.Defaults[p.TenantID]; !ok {
			s.Defaults[p.TenantID] = p.Name
		}
	}
}

// profileNamePattern is what a profile name may be: it is typed on command
// lines and shown in tables.
var profileNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// checkProfileName refuses a name commands could not take back.
func checkProfileName(name string) error {
	if !profileNamePattern.MatchString(name) {
		return fmt.Errorf("profile name %q is not valid: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	return nil
}

// profileBaseName makes a valid profile name of s (a tenant name or
// domain): characters a name cannot hold become '-'.
func profileBaseName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '@' || ch == '-') {
			b[i] = '-'
		}
	}
	name := strings.TrimLeft(string(b), "-._@")
	if len(name) > 48 {
		name = name[:48]
	}
	if name == "" {
		name = "profile"
	}
	return name
}

// freeName is base, or base-2, base-3 … when base is taken.
func (s profileStore) freeName(base string) string {
	name := base
	for i := 2; ; i++ {
		if _, taken := s.Profiles[name]; !taken {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// lockProfiles waits until no other command is changing profiles.json and
// returns the release. Every read-modify-write of the file holds it, so
// that two commands run at once (scripts creating tenants and logging in
// in parallel) do not each write back the file as they read it, losing
// the other's profile; the atomic rename alone only keeps the file whole.
// The lock is on the data directory itself: profiles.json is replaced by
// a rename, so a lock on it would be on a file already gone, and a lock
// file of its own would be one more file in the directory.
func (c *cli) lockProfiles() (release func(), err error) {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	f, err := os.Open(c.dataDir)
	if err != nil {
		return nil, fmt.Errorf("locking the profiles: %w", err)
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the profiles: %w", err)
	}
	return func() { f.Close() }, nil
}

// save writes the store atomically: a 0600 temporary file in the same
// directory, synced, then renamed over the old one.
func (c *cli) saveProfiles(s profileStore) error {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(c.dataDir, ".profiles-*.tmp")
	if err != nil {
		return fmt.Errorf("saving profiles: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("saving profiles: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("saving profiles: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving profiles: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving profiles: %w", err)
	}
	if err := os.Rename(tmp, c.profilesPath()); err != nil {
		return fmt.Errorf("saving profiles: %w", err)
	}
	return nil
}

// saveProfile stores p. A profile with a name replaces the profile of that
// name (a new secret for the same sign-in). Without a name, p takes the
// name of the profile that already signs in to its tenant with its client
// (so that a new secret replaces the old one), else the tenant's name for
// the tenant's first profile, else the tenant's name and the client id's
// first characters. The tenant's first profile becomes its default.
func (c *cli) saveProfile(p Profile) error {
	_, err := c.addProfile(p, false)
	return err
}

// addProfile is saveProfile, returning the profile as saved; with
// makeDefault the profile becomes its tenant's default in the same write
// (login).
func (c *cli) addProfile(p Profile, makeDefault bool) (Profile, error) {
	release, err := c.lockProfiles()
	if err != nil {
		return p, err
	}
	defer release()
	s, err := c.loadProfiles()
	if err != nil {
		return p, err
	}
	if p.Name == "" {
		p.Name = s.nameFor(p)
	}
	if err := checkProfileName(p.Name); err != nil {
		return p, err
	}
	if old, ok := s.Profiles[p.Name]; ok {
		if !strings.EqualFold(old.TenantID, p.TenantID) || !strings.EqualFold(old.ClientID, p.ClientID) {
			return p, fmt.Errorf("profile %s already signs in as client %s in %s: choose another --name, or remove it first with tenantbridge logout --name %s",
				p.Name, old.ClientID, old.name(), p.Name)
		}
		p.Bootstrap = p.Bootstrap || old.Bootstrap
	}
	p.Saved = time.Now().UTC()
	s.Profiles[p.Name] = p
	if _, ok := s.Profiles[s.Defaults[p.TenantID]]; !ok || makeDefault {
		s.Defaults[p.TenantID] = p.Name
	}
	return p, c.saveProfiles(s)
}

// nameFor is the name saveProfile gives a profile saved without one.
func (s profileStore) nameFor(p Profile) string {
	first := true
	for _, q := range s.sorted() {
		if !strings.EqualFold(q.TenantID, p.TenantID) {
			continue
		}
		if strings.EqualFold(q.ClientID, p.ClientID) {
			return q.Name
		}
		first = false
	}
	base := profileBaseName(p.name())
	if !first {
		short := strings.ToLower(p.ClientID)
		if len(short) > 8 {
			short = short[:8]
		}
		base = profileBaseName(base + "-" + short)
	}
	return s.freeName(base)
}

// removeProfile forgets every profile of a tenant id (the tenant was
// deleted), reporting whether there was one.
func (c *cli) removeProfile(tenantID string) (bool, error) {
	release, err := c.lockProfiles()
	if err != nil {
		return false, err
	}
	defer release()
	s, err := c.loadProfiles()
	if err != nil {
		return false, err
	}
	removed := false
	for name, p := range s.Profiles {
		if strings.EqualFold(p.TenantID, tenantID) {
			delete(s.Profiles, name)
			removed = true
		}
	}
	if !removed {
		return false, nil
	}
	delete(s.Defaults, tenantID)
	if _, ok := s.Profiles[s.Active]; !ok {
		s.Active = ""
	}
	return true, c.saveProfiles(s)
}

// removeProfileNamed forgets one profile. When it was its tenant's
// default, the tenant's bootstrap administrator, else its most recently
// saved profile, becomes the default.
func (c *cli) removeProfileNamed(name string) (Profile, error) {
	release, err := c.lockProfiles()
	if err != nil {
		return Profile{}, err
	}
	defer release()
	s, p, err := c.loadNamed(name)
	if err != nil {
		return Profile{}, err
	}
	delete(s.Profiles, name)
	if s.Active == name {
		s.Active = ""
	}
	if s.Defaults[p.TenantID] == name {
		delete(s.Defaults, p.TenantID)
		if next, ok := s.fallback(p.TenantID); ok {
			s.Defaults[p.TenantID] = next.Name
		}
	}
	return p, c.saveProfiles(s)
}

// fallback is the profile of a tenant that serves as its default when none
// is set: the bootstrap administrator, else the most recently saved.
func (s profileStore) fallback(tenantID string) (Profile, bool) {
	var best Profile
	found := false
	for _, p := range s.sorted() {
		if !strings.EqualFold(p.TenantID, tenantID) {
			continue
		}
		if !found || p.Bootstrap && !best.Bootstrap || p.Bootstrap == best.Bootstrap && p.Saved.After(best.Saved) {
			best, found = p, true
		}
	}
	return best, found
}

// tenantDefault is the profile --tenant selects for a tenant id.
func (s profileStore) tenantDefault(tenantID string) (Profile, bool) {
	if p, ok := s.Profiles[s.Defaults[tenantID]]; ok && strings.EqualFold(p.TenantID, tenantID) {
		return p, true
	}
	return s.fallback(tenantID)
}

// sorted returns the profiles ordered by tenant, then name.
func (s profileStore) sorted() []Profile {
	out := make([]Profile, 0, len(s.Profiles))
	for _, p := range s.Profiles {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Profile) int {
		if c := strings.Compare(a.name()+a.TenantID, b.name()+b.TenantID); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// tenants returns the default profile of each tenant with a profile.
func (s profileStore) tenants() []Profile {
	var out []Profile
	seen := map[string]bool{}
	for _, p := range s.sorted() {
		id := strings.ToLower(p.TenantID)
		if seen[id] {
			continue
		}
		seen[id] = true
		if d, ok := s.tenantDefault(p.TenantID); ok {
			out = append(out, d)
		}
	}
	return out
}

// findProfile picks the profile a command signs in with: --profile when
// given (whose tenant must then be the one --tenant names, if it names
// one); else the default profile of the tenant ref names; else, without
// ref, the active profile (account set), or the default profile of the
// only tenant there is a profile for.
func (c *cli) findProfile(ref string) (Profile, error) {
	s, err := c.loadProfiles()
	if err != nil {
		return Profile{}, err
	}
	if c.profile != "" {
		p, err := c.named(s, c.profile)
		if err != nil {
			return Profile{}, err
		}
		if strings.TrimSpace(ref) != "" && !p.matches(ref) {
			return Profile{}, fmt.Errorf("profile %s signs in to tenant %s, not %s", p.Name, p.name(), ref)
		}
		return p, nil
	}
	if strings.TrimSpace(ref) == "" {
		if p, ok := s.Profiles[s.Active]; ok {
			return p, nil
		}
		all := s.tenants()
		switch len(all) {
		case 1:
			return all[0], nil
		case 0:
			return Profile{}, fmt.Errorf("no tenant profile in %s: create a tenant (tenantbridge tenant create NAME) or sign in (tenantbridge login --service-principal -u CLIENT_ID -p SECRET --tenant TENANT)", c.dataDir)
		}
		names := make([]string, len(all))
		for i, p := range all {
			names[i] = p.name()
		}
		return Profile{}, fmt.Errorf("%d tenant profiles in %s (%s): choose one with --tenant, or make one the default with tenantbridge account set",
			len(all), c.dataDir, strings.Join(names, ", "))
	}
	for _, p := range s.tenants() {
		if p.matches(ref) {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("no profile for tenant %q in %s: sign in with tenantbridge login --service-principal -u CLIENT_ID -p SECRET --tenant %s", ref, c.dataDir, ref)
}

// confirmNotProfileApp refuses to delete what a saved profile signs in
// with unless yes: the application appID (tenantID "", since deleting an
// application removes its service principals in every tenant) or its
// service principal in tenantID. Deleting it would lock that profile out,
// and a tenant's bootstrap administrator is how it is administered.
func (c *cli) confirmNotProfileApp(tenantID, appID string, yes bool) error {
	s, err := c.loadProfiles()
	if err != nil {
		return err
	}
	var hit []string
	for _, p := range s.sorted() {
		if strings.EqualFold(p.ClientID, appID) && (tenantID == "" || strings.EqualFold(p.TenantID, tenantID)) {
			hit = append(hit, p.describe())
		}
	}
	if len(hit) == 0 {
		return nil
	}
	who := "the CLI profile " + strings.Join(hit, ", ")
	if len(hit) > 1 {
		who = "the CLI profiles " + strings.Join(hit, ", ")
	}
	if !yes {
		return fmt.Errorf("deleting it would lock out %s, which signs in with %s: add --yes to delete it anyway", who, appID)
	}
	c.notef("Deleting anyway: %s, which signs in with %s, will no longer sign in (forget it with tenantbridge logout --name NAME).", who, appID)
	return nil
}

// setDefault makes the profile name its tenant's default and, with active,
// the profile commands use without --tenant, as az account set makes a
// subscription the default.
func (c *cli) setDefault(name string, active bool) (Profile, error) {
	release, err := c.lockProfiles()
	if err != nil {
		return Profile{}, err
	}
	defer release()
	s, p, err := c.loadNamed(name)
	if err != nil {
		return Profile{}, err
	}
	s.Defaults[p.TenantID] = p.Name
	if active {
		s.Active = p.Name
	}
	return p, c.saveProfiles(s)
}

// named is the profile of that name in s, matched exactly.
func (c *cli) named(s profileStore, name string) (Profile, error) {
	p, ok := s.Profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("no profile named %q in %s (see tenantbridge account list)", name, c.dataDir)
	}
	return p, nil
}

// loadNamed loads the store and finds the profile of that name in it.
func (c *cli) loadNamed(name string) (profileStore, Profile, error) {
	s, err := c.loadProfiles()
	if err != nil {
		return s, Profile{}, err
	}
	p, err := c.named(s, name)
	return s, p, err
}
