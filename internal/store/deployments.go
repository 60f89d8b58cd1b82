package store

import (
	"context"
	"time"
)

// Deployment is a template deployment (Microsoft.Resources/deployments)
// at a subscription or in a resource group: a document the arm package
// owns (what was asked, the state, one operation per resource, the
// outputs) next to the columns it is found by. It goes with its resource
// group, or at subscription scope with its tenant.
type Deployment struct {
	TenantID       string
	SubscriptionID string
	// ResourceGroup is the group's name; "" at subscription scope.
	ResourceGroup string
	Name          string
	// State is the provisioningState (Accepted, Running, Succeeded,
	// Failed, Canceled): UnfinishedDeployments finds the deployments a
	// server stopped while running by it.
	State string
	// Document is the arm package's JSON; never empty.
	Document []byte
	Created  time.Time
	Updated  time.Time
}

// DeploymentUnfinished are the States of a deployment that still runs.
var DeploymentUnfinished = []string{"Accepted", "Running"}

// Deployments stores template deployments. Nothing caches them, so their
// writes do not move the generation.
type Deployments interface {
	// PutDeployment creates the deployment, or replaces the State,
	// Document and Updated of the one with its scope and name
	// (case-insensitively), keeping its Created and its name's case.
	// ErrNotFound when the tenant or the resource group does not exist.
	PutDeployment(ctx context.Context, d Deployment) error
	GetDeployment(ctx context.Context, subscriptionID, resourceGroup, name string) (Deployment, error)
	// ListDeployments lists the deployments at one scope (resourceGroup ""
	// is the subscription's own, not its groups'), ordered by name
	// case-insensitively.
	ListDeployments(ctx context.Context, subscriptionID, resourceGroup string) ([]Deployment, error)
	// DeleteDeployment fails with ErrNotFound when there is none.
	DeleteDeployment(ctx context.Context, subscriptionID, resourceGroup, name string) error
	// UnfinishedDeployments lists, in every tenant, the deployments whose
	// State is one of DeploymentUnfinished, ordered by Updated.
	UnfinishedDeployments(ctx context.Context) ([]Deployment, error)
}
