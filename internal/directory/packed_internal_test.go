package directory

import (
	"reflect"
	"testing"
	"time"
)

// nonZero sets v, a settable value of any type the documents use, to a
// value other than its zero value.
func nonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint8:
		v.SetUint(7)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		nonZero(t, v.Index(0))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		nonZero(t, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1_700_000_000, 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				nonZero(t, v.Field(i))
			}
		}
	default:
		t.Fatalf("no non-zero value for %s", v.Type())
	}
}

// checkPacking sets each property of a document in turn (to a value, to an
// empty list where it is a list) and checks that what the cache holds for
// the document unpacks into exactly the document: packed when it can be,
// held whole when it cannot.
func checkPacking[T any](t *testing.T, base T, wantPacked func(T) bool) {
	t.Helper()
	typ := reflect.TypeFor[T]()
	check := func(name string, doc T) {
		t.Helper()
		held := pack(&doc)
		var got *T
		if p, ok := held.(unpacker[T]); ok {
			got = p.unpack()
		} else {
			got = held.(*T)
		}
		if !reflect.DeepEqual(*got, doc) {
			t.Errorf("%s with %s: unpacked %+v, packed %+v", typ.Name(), name, *got, doc)
		}
		if _, packed := held.(unpacker[T]); packed != wantPacked(doc) {
			t.Errorf("%s with %s: packed = %v", typ.Name(), name, packed)
		}
	}
	check("the base properties", base)
	var zero T
	check("no properties", zero)
	for i := range typ.NumField() {
		f := typ.Field(i)
		doc := base
		nonZero(t, reflect.ValueOf(&doc).Elem().Field(i))
		check(f.Name, doc)
		if f.Type.Kind() == reflect.Slice {
			doc := base
			reflect.ValueOf(&doc).Elem().Field(i).Set(reflect.MakeSlice(f.Type, 0, 0))
			check(f.Name+" empty", doc)
		}
	}
}

func TestPackedDocuments(t *testing.T) {
	sp := ServicePrincipal{ID: "id", TenantID: "tid", AppID: "app", AppDisplayName: "a", DisplayName: "d",
		AppOwnerOrganizationID: "owner", ServicePrincipalType: SPTypeApplication, SignInAudience: AudienceMyOrg,
		ServicePrincipalNames: []string{"app"}, AccountEnabled: true, CreatedDateTime: time.Unix(1, 0).UTC(), Version: 3}
	checkPacking(t, sp, func(sp ServicePrincipal) bool {
		_, ok := packServicePrincipal(&sp)
		return ok
	})
	// The properties a packed service principal has no room for.
	for _, set := range []func(*ServicePrincipal){
		func(sp *ServicePrincipal) { sp.AppRoles = []AppRole{} },
		func(sp *ServicePrincipal) { sp.AppRoleAssignmentRequired = true },
		func(sp *ServicePrincipal) { sp.Tags = []string{"t"} },
		func(sp *ServicePrincipal) { sp.AlternativeNames = []string{"isExplicit=True"} },
	} {
		doc := sp
		set(&doc)
		if _, ok := pack(&doc).(unpacker[ServicePrincipal]); ok {
			t.Errorf("packed %+v", doc)
		}
	}
	if _, ok := pack(&sp).(unpacker[ServicePrincipal]); !ok {
		t.Errorf("a service principal without roles is held whole")
	}

	app := Application{ID: "id", TenantID: "tid", AppID: "app", DisplayName: "d", SignInAudience: AudienceMultipleOrgs,
		IdentifierURIs: []string{"api://x"}, PasswordCredentials: []PasswordCredential{{KeyID: "k", Hash: []byte{1}}},
		PublisherDomain: "x.onmicrosoft.com", CreatedDateTime: time.Unix(1, 0).UTC(), Version: 2}
	checkPacking(t, app, func(a Application) bool {
		_, ok := packApplication(&a)
		return ok
	})
	if _, ok := pack(&app).(unpacker[Application]); !ok {
		t.Errorf("an application with a secret and nothing else is held whole")
	}
}
