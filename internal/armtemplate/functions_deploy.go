package armtemplate

import (
	"strings"
)

// Deployment and resource functions
// (learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-deployment,
// template-functions-resource).

func fnParameters(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	name, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	return ev.parameter(name)
}

// variables() may not be used in parameters (template-functions-deployment#variables)
// nor in a user-defined function.
func fnVariables(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	if ev.section == secParamDefault || ev.section == secFunction {
		return nil, notHere(c)
	}
	name, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	return ev.variable(name)
}

func notHere(c *callExpr) error {
	return errf("The template function '%s' is not expected at this location. Please see %s for usage details", c.text, seeFunctions)
}

// copyIndex([loopName], [offset]) or copyIndex(offset).
func fnCopyIndex(_ *evaluator, c *callExpr, sc *scope, a []any) (any, error) {
	if err := nargs(c, a, 0, 2); err != nil {
		return nil, err
	}
	name := ""
	var offset int64
	for i, v := range a {
		switch t := v.(type) {
		case string:
			if i != 0 {
				return nil, typeErr(c, "Integer", v)
			}
			name = t
		case int64:
			offset = t
		default:
			return nil, typeErr(c, "String or Integer", v)
		}
	}
	idx, ok := sc.copyIndex(name)
	if !ok {
		if name == "" {
			return nil, errf("The template function 'copyIndex' is not expected at this location. The function can only be used in a resource with copy specified. Please see %s for usage details", seeCopy)
		}
		return nil, errf("The template function 'copyIndex' is not valid: the copy loop '%s' is not found. Please see %s for usage details", name, seeCopy)
	}
	return idx + offset, nil
}

func fnDeployment(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 0, 0); err != nil {
		return nil, err
	}
	d := NewObject()
	d.Set("name", ev.dc.DeploymentName)
	props := NewObject()
	tmpl := NewObject()
	if ev.t != nil {
		tmpl.Set("$schema", ev.t.Schema)
		tmpl.Set("contentVersion", ev.t.ContentVersion)
		if ev.t.LanguageVersion != "" {
			tmpl.Set("languageVersion", ev.t.LanguageVersion)
		}
	}
	props.Set("template", tmpl)
	if ev.t != nil {
		props.Set("templateHash", ev.t.Hash)
	}
	params := NewObject()
	if ev.t != nil && ev.params != nil {
		for _, p := range ev.t.params {
			if v, ok := ev.params.Get(p.name); ok && !p.secure() {
				pv := NewObject()
				pv.Set("value", v)
				params.Set(p.name, pv)
			}
		}
	}
	props.Set("parameters", params)
	props.Set("mode", "Incremental")
	props.Set("provisioningState", "Accepted")
	d.Set("properties", props)
	if ev.dc.Location != "" {
		d.Set("location", ev.dc.Location)
	}
	return d, nil
}

func fnEnvironment(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 0, 0); err != nil {
		return nil, err
	}
	return ev.dc.Environment.value(), nil
}

func fnResourceGroup(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 0, 0); err != nil {
		return nil, err
	}
	if ev.dc.ResourceGroup == "" {
		// Not in a resource group deployment (template-functions-resource#resourcegroup).
		return nil, errf("The template function 'resourceGroup' is not expected at this location. It can only be used in a resource group deployment. Please see %s for usage details", seeFunctions)
	}
	o := NewObject()
	o.Set("id", "/subscriptions/"+ev.dc.SubscriptionID+"/resourceGroups/"+ev.dc.ResourceGroup)
	o.Set("name", ev.dc.ResourceGroup)
	o.Set("type", "Microsoft.Resources/resourceGroups")
	o.Set("location", ev.dc.ResourceGroupLocation)
	if ev.dc.ResourceGroupManagedBy != "" {
		o.Set("managedBy", ev.dc.ResourceGroupManagedBy)
	}
	tags := NewObject()
	for k, v := range ev.dc.ResourceGroupTags {
		tags.Set(k, v)
	}
	o.Set("tags", tags)
	props := NewObject()
	props.Set("provisioningState", "Succeeded")
	o.Set("properties", props)
	return o, nil
}

func fnSubscription(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 0, 0); err != nil {
		return nil, err
	}
	o := NewObject()
	o.Set("id", "/subscriptions/"+ev.dc.SubscriptionID)
	o.Set("subscriptionId", ev.dc.SubscriptionID)
	o.Set("tenantId", ev.dc.TenantID)
	o.Set("displayName", ev.dc.SubscriptionName)
	return o, nil
}

func fnTenant(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 0, 0); err != nil {
		return nil, err
	}
	o := NewObject()
	o.Set("id", "/tenants/"+ev.dc.TenantID)
	o.Set("tenantId", ev.dc.TenantID)
	return o, nil
}

// managementGroup() exists only in management group deployments, which
// tenantbridge does not have.
func fnManagementGroup(_ *evaluator, c *callExpr, _ *scope, _ []any) (any, error) {
	return nil, errf("The template function 'managementGroup' is not expected at this location. It can only be used in a management group deployment. Please see %s for usage details", seeFunctions)
}

// splitTypeArgs finds the resource type among resourceId's arguments (the
// first one with a '/') and checks the names fit it: one name per type
// segment after the namespace.
func splitTypeArgs(c *callExpr, a []any) (prefix []string, typ string, names []string, err error) {
	ss, err := allStrings(c, a)
	if err != nil {
		return nil, "", nil, err
	}
	ti := -1
	for i, s := range ss {
		if strings.Contains(s, "/") {
			ti = i
			break
		}
	}
	if ti < 0 {
		return nil, "", nil, errf("The template function '%s' has an invalid parameter: no resource type was given. Please see %s for usage details", c.text, seeFunctions)
	}
	typ, names = ss[ti], ss[ti+1:]
	segs := strings.Split(typ, "/")
	for _, s := range segs {
		if s == "" {
			return nil, "", nil, errf("The template function '%s' has an invalid resource type '%s'", c.text, typ)
		}
	}
	if len(names) != len(segs)-1 {
		return nil, "", nil, errf("Unable to evaluate template language function '%s': function requires exactly one resource name for each segment of the resource type '%s' after the namespace; %d name(s) were given. Please see %s for usage details", c.text, typ, len(names), seeFunctions)
	}
	for _, n := range names {
		if n == "" {
			return nil, "", nil, errf("Unable to evaluate template language function '%s': a resource name cannot be empty", c.text)
		}
	}
	return ss[:ti], typ, names, nil
}

// providerPath is "/providers/NS/t1/n1/t2/n2".
func providerPath(typ string, names []string) string {
	segs := strings.Split(typ, "/")
	var b strings.Builder
	b.WriteString("/providers/")
	b.WriteString(segs[0])
	for i, s := range segs[1:] {
		b.WriteString("/" + s + "/" + names[i])
	}
	return b.String()
}

// resourceId([subscriptionId], [resourceGroupName], type, names…).
func fnResourceID(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	prefix, typ, names, err := splitTypeArgs(c, a)
	if err != nil {
		return nil, err
	}
	sub, rg := ev.dc.SubscriptionID, ev.dc.ResourceGroup
	switch len(prefix) {
	case 0:
	case 1:
		rg = prefix[0]
	case 2:
		sub, rg = prefix[0], prefix[1]
	default:
		return nil, errf("The template function 'resourceId' has too many parameters before the resource type")
	}
	if rg == "" {
		// At subscription scope resourceId() gives a subscription-level id.
		return "/subscriptions/" + sub + providerPath(typ, names), nil
	}
	return "/subscriptions/" + sub + "/resourceGroups/" + rg + providerPath(typ, names), nil
}

func fnSubscriptionResourceID(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	prefix, typ, names, err := splitTypeArgs(c, a)
	if err != nil {
		return nil, err
	}
	sub := ev.dc.SubscriptionID
	switch len(prefix) {
	case 0:
	case 1:
		sub = prefix[0]
	default:
		return nil, errf("The template function 'subscriptionResourceId' has too many parameters before the resource type")
	}
	return "/subscriptions/" + sub + providerPath(typ, names), nil
}

func fnTenantResourceID(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	prefix, typ, names, err := splitTypeArgs(c, a)
	if err != nil {
		return nil, err
	}
	if len(prefix) != 0 {
		return nil, errf("The template function 'tenantResourceId' expects the resource type as its first parameter")
	}
	return providerPath(typ, names), nil
}

// extensionResourceId(resourceId, type, names…).
func fnExtensionResourceID(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 3, -1); err != nil {
		return nil, err
	}
	base, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(base, "/") {
		return nil, errf("The template function 'extensionResourceId' expects a fully qualified resource id as its first parameter. The provided value is '%s'", base)
	}
	prefix, typ, names, err := splitTypeArgs(c, a[1:])
	if err != nil {
		return nil, err
	}
	if len(prefix) != 0 {
		return nil, errf("The template function 'extensionResourceId' expects the resource type as its second parameter")
	}
	return strings.TrimRight(base, "/") + providerPath(typ, names), nil
}

// reference() and list*() need Resource Manager: they may be used only in
// a resource's properties and in outputs (template-functions-resource#reference:
// "can't be used in the variables section"), and are answered when the
// deployment runs.
func runtimeAllowed(ev *evaluator, c *callExpr) error {
	if ev.section != secResources && ev.section != secOutputs {
		return notHere(c)
	}
	if ev.run == nil {
		return errNeedsRuntime
	}
	return nil
}

func fnReference(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 3); err != nil {
		return nil, err
	}
	target, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	apiVersion, full := "", false
	if len(a) > 1 {
		if apiVersion, err = str(c, a[1]); err != nil {
			return nil, err
		}
	}
	if len(a) > 2 {
		f, err := str(c, a[2])
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(f, "full") {
			return nil, errf("The template function 'reference' expects its third parameter to be 'Full'. The provided value is '%s'", f)
		}
		full = true
	}
	if err := runtimeAllowed(ev, c); err != nil {
		return nil, err
	}
	return ev.run.reference(ev, target, apiVersion, full)
}

func (ev *evaluator) list(c *callExpr, a []any) (any, error) {
	if len(a) < 2 || len(a) > 3 {
		return nil, arity(c, "two or three")
	}
	id, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	apiVersion, err := str(c, a[1])
	if err != nil {
		return nil, err
	}
	var body any
	if len(a) == 3 {
		body = Plain(a[2])
	}
	if err := runtimeAllowed(ev, c); err != nil {
		return nil, err
	}
	return ev.run.list(ev, id, c.text, apiVersion, body)
}
