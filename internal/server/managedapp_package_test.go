package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/solutions/armmanagedapplications"

	"github.com/tenantbridge/tenantbridge/examples"
	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// TestManagedAppPackageFileURI: a definition written with the unmodified
// armmanagedapplications client by packageFileUri (a zip on an https
// server the operator allows, here a local TLS server) takes the
// package's mainTemplate and createUiDefinition, fetched once; an
// application installs from it.
func TestManagedAppPackageFileURI(t *testing.T) {
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	for name, body := range map[string][]byte{"mainTemplate.json": examples.SharedResourceBrokerTemplate, "createUiDefinition.json": []byte(`{"handler": "Microsoft.Azure.CreateUIDef", "version": "0.1.2-preview", "parameters": {}}`)} {
		w, _ := zw.Create(name)
		_, _ = w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	fetched := 0
	pkg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched++
		_, _ = w.Write(zipBuf.Bytes())
	}))
	defer pkg.Close()
	u, _ := url.Parse(pkg.URL)
	r := start(t, server.Config{ManagedAppPackages: arm.PackageFetch{AllowedHosts: []string{u.Hostname()}, AllowLoopback: true,
		TLS: &tls.Config{RootCAs: pkg.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}})
	ctx := context.Background()
	tc := r.createTenant(t, "pkgpub")
	c := r.client()
	opts := &azarm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: c, Cloud: cloud.AzurePublic, Retry: policy.RetryOptions{MaxRetries: -1}}}
	cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := armresources.NewResourceGroupsClient(tc.SubscriptionID, cred, opts)
	for _, g := range []string{"defs", "apps"} {
		if _, err := groups.CreateOrUpdate(ctx, g, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	defs, _ := armmanagedapplications.NewApplicationDefinitionsClient(tc.SubscriptionID, cred, opts)
	poll := &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond}
	p, err := defs.BeginCreateOrUpdate(ctx, "defs", "by-url", armmanagedapplications.ApplicationDefinition{Location: to.Ptr("westeurope"),
		Properties: &armmanagedapplications.ApplicationDefinitionProperties{LockLevel: to.Ptr(armmanagedapplications.ApplicationLockLevelReadOnly),
			PackageFileURI: to.Ptr(pkg.URL + "/srb.zip?sv=2022&sig=SAS")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := p.PollUntilDone(ctx, poll)
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := def.Properties.MainTemplate.(map[string]any)
	ui, _ := def.Properties.CreateUIDefinition.(map[string]any)
	if mt["contentVersion"] != "1.0.0.0" || ui["handler"] != "Microsoft.Azure.CreateUIDef" || fetched != 1 {
		t.Fatalf("definition from the package: %v %v (fetched %d)", def.Properties.MainTemplate, def.Properties.CreateUIDefinition, fetched)
	}
	apps, _ := armmanagedapplications.NewApplicationsClient(tc.SubscriptionID, cred, opts)
	ap, err := apps.BeginCreateOrUpdate(ctx, "apps", "from-url", armmanagedapplications.Application{Kind: to.Ptr("ServiceCatalog"), Location: to.Ptr("westeurope"),
		Properties: &armmanagedapplications.ApplicationProperties{ApplicationDefinitionID: def.ID,
			ManagedResourceGroupID: to.Ptr("/subscriptions/" + tc.SubscriptionID + "/resourceGroups/mrg-from-url")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := ap.PollUntilDone(ctx, poll)
	if err != nil {
		t.Fatal(err)
	}
	if *app.Properties.ProvisioningState != armmanagedapplications.ProvisioningStateSucceeded || fetched != 1 {
		t.Fatalf("install %+v (fetched %d)", app.Properties, fetched)
	}
}
