package wire

// Standard AMQP error conditions (part 2.8.15-2.8.18).
const (
	ErrInternalError         Symbol = "amqp:internal-error"
	ErrNotFound              Symbol = "amqp:not-found"
	ErrUnauthorizedAccess    Symbol = "amqp:unauthorized-access"
	ErrDecodeError           Symbol = "amqp:decode-error"
	ErrResourceLimitExceeded Symbol = "amqp:resource-limit-exceeded"
	ErrNotAllowed            Symbol = "amqp:not-allowed"
	ErrInvalidField          Symbol = "amqp:invalid-field"
	ErrNotImplemented        Symbol = "amqp:not-implemented"
	ErrResourceLocked        Symbol = "amqp:resource-locked"
	ErrPreconditionFailed    Symbol = "amqp:precondition-failed"
	ErrResourceDeleted       Symbol = "amqp:resource-deleted"
	ErrIllegalState          Symbol = "amqp:illegal-state"
	ErrFrameSizeTooSmall     Symbol = "amqp:frame-size-too-small"

	ErrConnectionForced        Symbol = "amqp:connection:forced"
	ErrConnectionFraming       Symbol = "amqp:connection:framing-error"
	ErrConnectionRedirect      Symbol = "amqp:connection:redirect"
	ErrSessionWindowViolation  Symbol = "amqp:session:window-violation"
	ErrSessionErrantLink       Symbol = "amqp:session:errant-link"
	ErrSessionHandleInUse      Symbol = "amqp:session:handle-in-use"
	ErrSessionUnattachedHandle Symbol = "amqp:session:unattached-handle"

	ErrLinkDetachForced          Symbol = "amqp:link:detach-forced"
	ErrLinkTransferLimitExceeded Symbol = "amqp:link:transfer-limit-exceeded"
	ErrLinkMessageSizeExceeded   Symbol = "amqp:link:message-size-exceeded"
	ErrLinkRedirect              Symbol = "amqp:link:redirect"
	ErrLinkStolen                Symbol = "amqp:link:stolen"
)

// Service Bus error conditions, as the SDKs map them to their exceptions.
const (
	ErrMessageLockLost        Symbol = "com.microsoft:message-lock-lost"
	ErrSessionLockLost        Symbol = "com.microsoft:session-lock-lost"
	ErrSessionCannotBeLocked  Symbol = "com.microsoft:session-cannot-be-locked"
	ErrTimeout                Symbol = "com.microsoft:timeout"
	ErrEntityDisabled         Symbol = "com.microsoft:entity-disabled"
	ErrServerBusy             Symbol = "com.microsoft:server-busy"
	ErrArgumentError          Symbol = "com.microsoft:argument-error"
	ErrArgumentOutOfRange     Symbol = "com.microsoft:argument-out-of-range"
	ErrEntityAlreadyExists    Symbol = "com.microsoft:entity-already-exists"
	ErrMessageNotFound        Symbol = "com.microsoft:message-not-found"
	ErrNoMatchingSubscription Symbol = "com.microsoft:no-matching-subscription"
	ErrPartitionNotOwned      Symbol = "com.microsoft:partition-not-owned"
	ErrStoreLockLost          Symbol = "com.microsoft:store-lock-lost"
	ErrPublisherRevoked       Symbol = "com.microsoft:publisher-revoked"
	ErrOperationCancelled     Symbol = "com.microsoft:operation-cancelled"
	ErrRelayNotFound          Symbol = "com.microsoft:relay-not-found"
	ErrAuthFailed             Symbol = "com.microsoft:auth-failed"
	ErrMessageWaitTimeout     Symbol = "com.microsoft:message-wait-timeout"
	ErrMSPreconditionFailed   Symbol = "com.microsoft:precondition-failed"
	ErrAddressAlreadyInUse    Symbol = "com.microsoft:address-already-in-use"
)
