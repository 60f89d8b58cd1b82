package wire

// SASL outcome codes (sasl-outcome "code", part 5.3.3.6).
const (
	SASLCodeOK      uint8 = 0 // authentication succeeded
	SASLCodeAuth    uint8 = 1 // failed: bad credentials
	SASLCodeSys     uint8 = 2 // failed: system error
	SASLCodeSysPerm uint8 = 3 // failed: unrecoverable system error
	SASLCodeSysTemp uint8 = 4 // failed: transient system error
)

// SASL mechanism names used by Service Bus clients.
const (
	SASLAnonymous Symbol = "ANONYMOUS"
	SASLPlain     Symbol = "PLAIN"
	SASLExternal  Symbol = "EXTERNAL"
	SASLMSSBCBS   Symbol = "MSSBCBS"
)

// SASLMechanisms (0x40) lists the mechanisms the server offers.
type SASLMechanisms struct {
	Mechanisms []Symbol
}

// MarshalAMQP implements Marshaler.
func (s *SASLMechanisms) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescSASLMechanisms)
	mechs := s.Mechanisms
	if mechs == nil {
		mechs = []Symbol{}
	}
	l.symbols(mechs)
	return l.finish()
}

func decodeSASLMechanisms(f *fields) any {
	f.mandatory(0)
	return &SASLMechanisms{Mechanisms: f.symbols(0)}
}

// SASLInit (0x41) is the client's chosen mechanism and first response.
type SASLInit struct {
	Mechanism       Symbol
	InitialResponse []byte // nil is absent
	Hostname        string
}

// MarshalAMQP implements Marshaler.
func (s *SASLInit) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescSASLInit)
	l.sym(s.Mechanism, true)
	l.bin(s.InitialResponse)
	l.str(s.Hostname, s.Hostname != "")
	return l.finish()
}

func decodeSASLInit(f *fields) any {
	f.mandatory(0)
	return &SASLInit{Mechanism: f.sym(0), InitialResponse: f.bin(1), Hostname: f.str(2)}
}

// SASLChallenge (0x42) is a server challenge.
type SASLChallenge struct {
	Challenge []byte
}

// MarshalAMQP implements Marshaler.
func (s *SASLChallenge) MarshalAMQP(b *Buffer) error {
	return marshalBinaryOnly(b, DescSASLChallenge, s.Challenge)
}

func decodeSASLChallenge(f *fields) any {
	f.mandatory(0)
	return &SASLChallenge{Challenge: f.bin(0)}
}

// SASLResponse (0x43) is the client's answer to a challenge.
type SASLResponse struct {
	Response []byte
}

// MarshalAMQP implements Marshaler.
func (s *SASLResponse) MarshalAMQP(b *Buffer) error {
	return marshalBinaryOnly(b, DescSASLResponse, s.Response)
}

func decodeSASLResponse(f *fields) any {
	f.mandatory(0)
	return &SASLResponse{Response: f.bin(0)}
}

// marshalBinaryOnly writes a composite whose one mandatory field is
// binary (nil is sent as an empty binary, as the field is mandatory).
func marshalBinaryOnly(b *Buffer, code uint64, p []byte) error {
	l := b.beginComposite(code)
	if p == nil {
		p = []byte{}
	}
	l.bin(p)
	return l.finish()
}

// SASLOutcome (0x44) ends the SASL exchange.
type SASLOutcome struct {
	Code           uint8
	AdditionalData []byte // nil is absent
}

// MarshalAMQP implements Marshaler.
func (s *SASLOutcome) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescSASLOutcome)
	l.ubyte(s.Code, true)
	l.bin(s.AdditionalData)
	return l.finish()
}

func decodeSASLOutcome(f *fields) any {
	f.mandatory(0)
	code, _ := field[uint8](f, 0, "ubyte")
	return &SASLOutcome{Code: code, AdditionalData: f.bin(1)}
}
