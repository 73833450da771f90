package pkcs11

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/cardperso/perso"
	p11 "github.com/miekg/pkcs11"
)

// features is what Open found the token able to do. Mechanism flags alone
// are not trusted for wrapping: SoftHSM2 2.6 lists CKM_DES3_CBC and
// CKM_DES_ECB with CKF_WRAP yet refuses C_WrapKey with them, so wrapping
// is tried on session objects.
type features struct {
	mechs    map[uint]bool
	des3Wrap bool // C_WrapKey(CKM_DES3_ECB) under a DES2 key works
	aesCBC   bool // C_WrapKey(CKM_AES_CBC) under an AES key works
	kwpExact bool // CKM_AES_KEY_WRAP_PAD is RFC 5649 for lengths not a multiple of 8
}

func (f *features) has(m uint) bool { return f.mechs[m] }

// probe lists the token's mechanisms, tries the wraps, and composes the
// capability report.
func (m *Module) probe() error {
	list, err := m.ctx.GetMechanismList(m.slot)
	if err != nil {
		return fmt.Errorf("pkcs11: C_GetMechanismList: %w", err)
	}
	m.feat.mechs = make(map[uint]bool, len(list))
	for _, mk := range list {
		m.feat.mechs[mk.Mechanism] = true
	}
	s := <-m.pool
	defer func() { m.pool <- s }()
	m.feat.des3Wrap = m.feat.has(p11.CKM_DES3_ECB) && m.tryWrap(s, p11.CKK_DES2, p11.CKM_DES3_ECB, nil)
	m.feat.aesCBC = m.feat.has(p11.CKM_AES_CBC) && m.tryWrap(s, p11.CKK_AES, p11.CKM_AES_CBC, make([]byte, 16))
	m.feat.kwpExact = m.feat.has(p11.CKM_AES_KEY_WRAP_PAD) && m.tryWrapPad(s)
	m.caps = m.capabilities()
	return nil
}

// tryWrap reports whether a DES2 session key wraps under a session key of
// type kekType with the mechanism.
func (m *Module) tryWrap(s *session, kekType, mechanism uint, iv []byte) bool {
	kt := with(sessionKey(kekType, 0, p11.CKA_WRAP), p11.CKA_EXTRACTABLE, false)
	var gen uint = p11.CKM_DES2_KEY_GEN
	if kekType == p11.CKK_AES {
		gen, kt = p11.CKM_AES_KEY_GEN, with(kt, p11.CKA_VALUE_LEN, 16)
	}
	kek, err := m.ctx.GenerateKey(s.h, mech(gen, nil), kt)
	if err != nil {
		return false
	}
	defer m.destroy(s, kek)
	key, err := m.ctx.GenerateKey(s.h, mech(p11.CKM_DES2_KEY_GEN, nil), sessionKey(p11.CKK_DES2, 0))
	if err != nil {
		return false
	}
	defer m.destroy(s, key)
	w, err := m.ctx.WrapKey(s.h, mech(mechanism, iv), kek, key)
	return err == nil && len(w) == 16
}

// tryWrapPad reports whether CKM_AES_KEY_WRAP_PAD wraps a 7-byte value as
// RFC 5649 does, checked against the host's implementation with a session
// KEK of known value (the test vector of RFC 5649 section 6).
func (m *Module) tryWrapPad(s *session) bool {
	kekValue := []byte{0x58, 0x40, 0xdf, 0x6e, 0x29, 0xb0, 0x2a, 0xf1, 0xab, 0x49, 0x3b, 0x70, 0x5b, 0xf1, 0x6e, 0xa1, 0xae, 0x83, 0x38, 0xf4, 0xdc, 0xc1, 0x76, 0xa8}
	value := []byte{0x46, 0x6f, 0x72, 0x50, 0x61, 0x73, 0x69}
	want := []byte{0xaf, 0xbe, 0xb0, 0xf0, 0x7d, 0xfb, 0xf5, 0x41, 0x92, 0x00, 0xf2, 0xcc, 0xb5, 0x0b, 0xb2, 0x4f}
	kek, err := m.importKey(s, p11.CKK_AES, kekValue, p11.CKA_WRAP)
	if err != nil {
		return false
	}
	defer m.destroy(s, kek)
	v, err := m.importKey(s, p11.CKK_GENERIC_SECRET, value)
	if err != nil {
		return false
	}
	defer m.destroy(s, v)
	w, err := m.ctx.WrapKey(s.h, mech(p11.CKM_AES_KEY_WRAP_PAD, nil), kek, v)
	return err == nil && bytes.Equal(w, want)
}

// Capabilities reports what the token does inside itself and what this
// backend does on the host because the token cannot, as found by Open.
func (m *Module) Capabilities() perso.Capabilities {
	c := m.caps
	c.Schemes = slices.Clone(c.Schemes)
	c.Fallbacks = slices.Clone(c.Fallbacks)
	return c
}

func (m *Module) capabilities() perso.Capabilities {
	f := &m.feat
	c := perso.Capabilities{
		Module:         "PKCS#11 token " + m.token,
		DeriveInModule: f.has(p11.CKM_DES3_ECB_ENCRYPT_DATA) && f.has(p11.CKM_AES_KEY_WRAP),
		KeyGenInModule: f.has(p11.CKM_RSA_PKCS_KEY_PAIR_GEN) && f.has(p11.CKM_AES_KEY_WRAP_PAD),
		SignInModule:   f.has(p11.CKM_RSA_X_509),
		MACInModule:    f.has(p11.CKM_AES_CMAC),
		// Symmetric secrets translate in the token when it wraps under
		// both kinds of card DEK; RSA components never can (see below).
		TranslateInModule: f.des3Wrap && f.aesCBC,
	}
	if f.has(p11.CKM_AES_KEY_WRAP) && f.has(p11.CKM_AES_KEY_WRAP_PAD) {
		c.Schemes = append(c.Schemes, perso.SchemeAESKW)
	}
	if f.des3Wrap {
		c.Schemes = append(c.Schemes, perso.SchemeDES3ECB)
	}
	fb := func(format string, a ...any) { c.Fallbacks = append(c.Fallbacks, fmt.Sprintf(format, a...)) }
	if !f.des3Wrap {
		fb("scheme 3DES-ECB: unavailable, the token cannot wrap under a 3DES key (C_WrapKey with CKM_DES3_ECB fails); AES-KW only")
		fb("SCP02 translation: the token cannot wrap under the 3DES session DEK, so the secret is opened on the host and encrypted under the session DEK there, in one step that zeroes the clear value at once; the session DEK is returned to the host")
	}
	if !f.aesCBC {
		fb("SCP03 translation: the token cannot wrap with CKM_AES_CBC, so secrets are opened and encrypted under the static DEK on the host")
	} else {
		fb("SCP03 translation: values whose length is not a multiple of 16 are opened on the host, padded (ISO/IEC 9797-1 method 2), re-imported and wrapped under the DEK in the token")
	}
	if !f.kwpExact {
		fb("RFC 5649: the token's CKM_AES_KEY_WRAP_PAD zero-pads values to a multiple of 8 bytes before wrapping, so sealed values of other lengths are wrapped block by block (CKM_AES_CBC under the KEK) to stay RFC 5649, and a card's PKCS#8 private key is sealed followed by up to 7 zero bytes (DER delimits it)")
	}
	fb("RSA CRT components: no PKCS#11 mechanism encrypts one component of a private key, so the PKCS#8 key is unwrapped readable, the component read and encrypted for the card on the host, and zeroed")
	fb("SCP03 KDF (card key diversification from an AES KMC): the token has no NIST SP 800-108 derivation mechanism in use here, so the KDF runs as CKM_AES_CMAC signatures and the diversified key passes through the host before it is imported and wrapped")
	if !c.MACInModule {
		fb("application MAC: the token has no CKM_AES_CMAC")
	}
	fb("EMV cryptograms: keys are derived and the MAC computed in the token with CKM_DES3_CBC and CKM_DES3_ECB steps; the CBC chaining value between them passes through the host")
	return c
}

// CapabilityReport formats a capability report for a start-up banner, one
// line per fact.
func CapabilityReport(c perso.Capabilities) string {
	var b strings.Builder
	yn := func(v bool) string {
		if v {
			return "in module"
		}
		return "on host"
	}
	fmt.Fprintf(&b, "security module: %s\n", c.Module)
	fmt.Fprintf(&b, "  card key derivation:   %s\n", yn(c.DeriveInModule))
	fmt.Fprintf(&b, "  card RSA keys:         %s\n", yn(c.KeyGenInModule))
	fmt.Fprintf(&b, "  certificate signing:   %s\n", yn(c.SignInModule))
	fmt.Fprintf(&b, "  application MAC:       %s\n", yn(c.MACInModule))
	fmt.Fprintf(&b, "  KEK translation:       %s\n", yn(c.TranslateInModule))
	names := make([]string, len(c.Schemes))
	for i, s := range c.Schemes {
		names[i] = s.String()
	}
	fmt.Fprintf(&b, "  schemes:               %s\n", strings.Join(names, ", "))
	for _, f := range c.Fallbacks {
		fmt.Fprintf(&b, "  - %s\n", f)
	}
	return b.String()
}

// mechName names a mechanism in messages.
func mechName(m uint) string {
	switch m {
	case p11.CKM_DES3_ECB_ENCRYPT_DATA:
		return "CKM_DES3_ECB_ENCRYPT_DATA"
	case p11.CKM_AES_ECB_ENCRYPT_DATA:
		return "CKM_AES_ECB_ENCRYPT_DATA"
	case p11.CKM_DES3_CBC_ENCRYPT_DATA:
		return "CKM_DES3_CBC_ENCRYPT_DATA"
	case p11.CKM_DES3_ECB:
		return "CKM_DES3_ECB"
	case p11.CKM_DES3_CBC:
		return "CKM_DES3_CBC"
	case p11.CKM_AES_CMAC:
		return "CKM_AES_CMAC"
	case p11.CKM_AES_KEY_WRAP:
		return "CKM_AES_KEY_WRAP"
	case p11.CKM_AES_KEY_WRAP_PAD:
		return "CKM_AES_KEY_WRAP_PAD"
	case p11.CKM_AES_CBC:
		return "CKM_AES_CBC"
	case p11.CKM_RSA_X_509:
		return "CKM_RSA_X_509"
	case p11.CKM_RSA_PKCS_KEY_PAIR_GEN:
		return "CKM_RSA_PKCS_KEY_PAIR_GEN"
	}
	return fmt.Sprintf("mechanism 0x%X", m)
}
