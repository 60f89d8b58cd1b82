package main

// tenantbridge marketplace offer publish|unpublish|list: the operator
// puts a managed application definition on sale, or takes it off. In
// Azure a publisher does this in Partner Center, which has no Resource
// Manager API; the definition itself is written with the unmodified SDK
// and has no "published" property.

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

func (c *cli) marketplaceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "marketplace",
		Short: "Marketplace offers of managed applications: publish and withdraw them (operator)",
	}
	offer := &cobra.Command{
		Use:   "offer",
		Short: "Publish, withdraw and list the offers customers of every tenant may install by plan",
	}
	offer.AddCommand(c.offerChangeCommand("publish", "Publish an application definition as a marketplace offer",
		func(ctx context.Context, op *azclient.Operator, id string) (*azclient.MarketplaceOffer, error) {
			return op.PublishOffer(ctx, id)
		},
		"Offer %s of %s is published: install it with kind MarketPlace and plan {publisher: %s, product: %s}."),
		c.offerChangeCommand("unpublish", "Withdraw an offer: new installs by plan are refused, installed applications stay",
			func(ctx context.Context, op *azclient.Operator, id string) (*azclient.MarketplaceOffer, error) {
				return op.UnpublishOffer(ctx, id)
			}, "Offer %s of %s is withdrawn (publisher %s, product %s)."),
		c.offerListCommand())
	cmd.AddCommand(offer)
	return cmd
}

var offerHeader = []string{"PUBLISHER", "OFFER", "PUBLISHED", "DEFINITION"}

func offerRow(o azclient.MarketplaceOffer) []string {
	return []string{o.Publisher, o.Offer, fmtTime(o.PublishedAt), o.ApplicationDefinitionID}
}

func (c *cli) offerChangeCommand(use, short string, call func(context.Context, *azclient.Operator, string) (*azclient.MarketplaceOffer, error), note string) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   use + " --definition-id ID",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := c.operator()
			if err != nil {
				return err
			}
			o, err := call(cmd.Context(), op, id)
			if err != nil {
				return err
			}
			err = c.render(cmd, o, func() table {
				return fields("publisher", o.Publisher, "offer", o.Offer, "published", fmtTime(o.PublishedAt), "definition", o.ApplicationDefinitionID)
			})
			if err == nil {
				c.notef(note, o.Offer, o.Publisher, o.Publisher, o.Offer)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&id, "definition-id", "", "resource id of the Microsoft.Solutions/applicationDefinitions (required)")
	_ = cmd.MarkFlagRequired("definition-id")
	return cmd
}

func (c *cli) offerListCommand() *cobra.Command {
	var tenant string
	cmd := listCommand(c, "List the published offers (of --tenant, or of every tenant)",
		withOperator(c, func(ctx context.Context, op *azclient.Operator, _ []string) ([]azclient.MarketplaceOffer, error) {
			return op.ListOffers(ctx, tenant)
		}), offerHeader, offerRow)
	cmd.Flags().StringVar(&tenant, "tenant", "", "the publisher tenant's id or domain")
	return cmd
}
