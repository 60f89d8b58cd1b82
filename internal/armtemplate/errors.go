// Package armtemplate parses and evaluates Azure Resource Manager templates
// (the JSON template language of Microsoft.Resources/deployments): parameters,
// variables, user-defined functions, conditions, copy loops, dependsOn,
// nested deployments, outputs, languageVersion 2.0 symbolic resources, and
// the template expression language with its standard functions.
//
// Parse checks a template's shape; Template.Plan validates parameters and
// evaluates everything that does not need Resource Manager at run time,
// giving the ordered plan of resources; Plan.Run deploys that plan through a
// Deployer, in dependency order, and evaluates the outputs. What the
// evaluator needs of Resource Manager while it runs (reference(), list*(),
// Key Vault references in parameters) it asks a Resolver.
//
// Everything here is written from Microsoft's documentation of the format
// (learn.microsoft.com/azure/azure-resource-manager/templates/syntax and the
// "template functions" pages); the conformance suite in testdata holds the
// documented examples with their documented outputs.
package armtemplate

import (
	"fmt"
	"strings"
)

// Error codes Resource Manager gives for templates and deployments
// (learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors).
const (
	// CodeInvalidTemplate: the template (or an expression in it) is not
	// valid, found while validating or evaluating it.
	CodeInvalidTemplate = "InvalidTemplate"
	// CodeInvalidTemplateDeployment: the deployment as a whole failed
	// validation; its details say why.
	CodeInvalidTemplateDeployment = "InvalidTemplateDeployment"
	// CodeDeploymentFailed: at least one resource's deployment failed; the
	// details hold each failure.
	CodeDeploymentFailed = "DeploymentFailed"
)

// Error is a template or deployment error as Resource Manager reports it:
// a code, a message, the target it concerns and, for InvalidTemplate, the
// position in the template (Resource Manager's "TemplateViolation"
// additionalInfo: lineNumber, linePosition, path). Details nest as in
// ARM's error envelope ({"error":{"code","message","target","details"}}).
type Error struct {
	Code    string
	Message string
	Target  string
	// Line and Column are 1-based positions in the template text, 0 when
	// unknown; Path is the JSON path of the element ("resources[0].name").
	Line, Column int
	Path         string
	Details      []*Error
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Code + ": " + e.Message
	}
	parts := make([]string, len(e.Details))
	for i, d := range e.Details {
		parts[i] = d.Error()
	}
	return e.Code + ": " + e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Usage-details links Resource Manager appends to its messages, as in
// "… Please see https://aka.ms/arm-functions for usage details.".
const (
	seeFunctions  = "https://aka.ms/arm-functions"
	seeResources  = "https://aka.ms/arm-syntax-resources"
	seeParameters = "https://aka.ms/arm-create-parameter-file"
	seeTemplate   = "https://aka.ms/arm-syntax"
	seeCopy       = "https://aka.ms/arm-copy"
	seeDeploy     = "https://aka.ms/DeployOperations"
)

// validationFailed is ARM's outer wording for every validation error:
// "Deployment template validation failed: '<inner>'.".
func validationFailed(n *node, path, inner string) *Error {
	e := &Error{Code: CodeInvalidTemplate, Message: "Deployment template validation failed: '" + inner + "'.", Path: path}
	if n != nil {
		e.Line, e.Column = n.line, n.col
	}
	return e
}

// at formats ARM's " at line 'N' and column 'M'" fragment.
func at(n *node) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf(" at line '%d' and column '%d'", n.line, n.col)
}

// exprError is an error inside the expression language, before it is placed
// in a template element: "The template function 'x' is not valid…".
type exprError struct{ msg string }

func (e *exprError) Error() string { return e.msg }

func errf(format string, args ...any) error { return &exprError{msg: fmt.Sprintf(format, args...)} }

// elementError wraps an expression error with the element it was found in,
// as ARM does: "The template resource 'x' at line '3' and column '5' is not
// valid: <msg>. Please see https://aka.ms/arm-functions for usage details."
func elementError(kind, name string, n *node, path string, err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	msg := err.Error()
	inner := fmt.Sprintf("The template %s '%s'%s is not valid: %s. Please see %s for usage details.", kind, name, at(n), msg, seeFunctions)
	return validationFailed(n, path, inner)
}

// Envelope is the error as Resource Manager writes it in a response body's
// "error" member: code, message, target, details, and for a position in
// the template the TemplateViolation additionalInfo (lineNumber,
// linePosition, path).
func (e *Error) Envelope() map[string]any {
	out := map[string]any{"code": e.Code, "message": e.Message}
	if e.Target != "" {
		out["target"] = e.Target
	}
	if len(e.Details) > 0 {
		details := make([]any, len(e.Details))
		for i, d := range e.Details {
			details[i] = d.Envelope()
		}
		out["details"] = details
	}
	if e.Line > 0 || e.Path != "" {
		out["additionalInfo"] = []any{map[string]any{
			"type": "TemplateViolation",
			"info": map[string]any{"lineNumber": e.Line, "linePosition": e.Column, "path": e.Path},
		}}
	}
	return out
}
