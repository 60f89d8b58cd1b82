package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// profilesFile is the CLI's sign-in store in the data directory: one
// service-principal credential per tenant, keyed by tenant id. It holds
// secrets, so it is 0600 and replaced atomically.
const profilesFile = "profiles.json"

// Profile is a saved sign-in to one tenant.
type Profile struct {
	TenantID       string    `json:"tenantId"`
	TenantName     string    `json:"tenantName,omitempty"`
	Domain         string    `json:"domain,omitempty"`
	SubscriptionID string    `json:"subscriptionId,omitempty"`
	ClientID       string    `json:"clientId"`
	ClientSecret   string    `json:"clientSecret"`
	Saved          time.Time `json:"saved"`
}

// name is how a profile is shown: its tenant's name, else domain, else id.
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

type profileStore struct {
	Profiles map[string]Profile `json:"profiles"`
}

func (c *cli) profilesPath() string { return filepath.Join(c.dataDir, profilesFile) }

// loadProfiles reads the profile store; a missing file is an empty store.
func (c *cli) loadProfiles() (profileStore, error) {
	s := profileStore{Profiles: map[string]Profile{}}
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
	return s, nil
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

// saveProfile adds or replaces the profile of p's tenant.
func (c *cli) saveProfile(p Profile) error {
	s, err := c.loadProfiles()
	if err != nil {
		return err
	}
	p.Saved = time.Now().UTC()
	s.Profiles[p.TenantID] = p
	return c.saveProfiles(s)
}

// removeProfile forgets the profile of a tenant id, if there is one.
func (c *cli) removeProfile(tenantID string) (bool, error) {
	s, err := c.loadProfiles()
	if err != nil {
		return false, err
	}
	if _, ok := s.Profiles[tenantID]; !ok {
		return false, nil
	}
	delete(s.Profiles, tenantID)
	return true, c.saveProfiles(s)
}

// sorted returns the profiles ordered by tenant name.
func (s profileStore) sorted() []Profile {
	out := make([]Profile, 0, len(s.Profiles))
	for _, p := range s.Profiles {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Profile) int { return strings.Compare(a.name()+a.TenantID, b.name()+b.TenantID) })
	return out
}

// find picks the profile for --tenant ref; with no ref, the only profile.
func (c *cli) findProfile(ref string) (Profile, error) {
	s, err := c.loadProfiles()
	if err != nil {
		return Profile{}, err
	}
	all := s.sorted()
	if strings.TrimSpace(ref) == "" {
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
		return Profile{}, fmt.Errorf("%d tenant profiles in %s (%s): choose one with --tenant", len(all), c.dataDir, strings.Join(names, ", "))
	}
	for _, p := range all {
		if p.matches(ref) {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("no profile for tenant %q in %s: sign in with tenantbridge login --service-principal -u CLIENT_ID -p SECRET --tenant %s", ref, c.dataDir, ref)
}
