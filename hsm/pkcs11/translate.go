package pkcs11

import (
	"context"
	"fmt"
	"math/big"
	"runtime"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/internal/protect"
	p11 "github.com/miekg/pkcs11"
)

// channel is what SessionKeys leaves in SessionKeys.Handle when the DEK
// stays in the token: the public inputs from which Translate derives the
// DEK again for each secret, so that no token object outlives a call.
type channel struct {
	m      *Module
	kmc    perso.KeyRef
	method perso.Method
	kdd    []byte
	scp    perso.SCP
	seq    []byte
}

// checkChannel checks a SessionKeyRequest's shape.
func checkChannel(req perso.SessionKeyRequest) error {
	switch req.SCP.Version {
	case 0x02:
		if req.Method != 0 && req.Method != perso.MethodCPS && req.Method != perso.MethodVISA2 {
			return fmt.Errorf("pkcs11: %w: SCP02 card keys by %s", perso.ErrBadInput, req.Method)
		}
		if len(req.Sequence) != 2 {
			return fmt.Errorf("pkcs11: %w: SCP02 sequence counter is %d bytes, want 2", perso.ErrBadInput, len(req.Sequence))
		}
	case 0x03:
		if req.Method != 0 && req.Method != perso.MethodSCP03KDF {
			return fmt.Errorf("pkcs11: %w: SCP03 card keys by %s", perso.ErrBadInput, req.Method)
		}
		// The context is host || card challenge, 16 or 32 bytes in a
		// session; the KDF is defined for any, and test vectors use others.
		if len(req.Context) == 0 || len(req.Context) > 64 {
			return fmt.Errorf("pkcs11: %w: SCP03 context (host || card challenge) is %d bytes, want 1 to 64", perso.ErrBadInput, len(req.Context))
		}
	default:
		return fmt.Errorf("pkcs11: %w: %s", perso.ErrUnsupported, req.SCP)
	}
	if req.Method != 0 && len(req.KDD) != 10 {
		return fmt.Errorf("pkcs11: %w: KDD is %d bytes, want 10", perso.ErrBadInput, len(req.KDD))
	}
	return nil
}

// SessionKeys diversifies the card's static keys from the KMC inside the
// token (EMV CPS v1.1 5.3.1 or VISA2 for SCP02, the SCP03 KDF for AES;
// Method 0 uses the KMC as the card's key) and derives the secure channel
// session keys from them:
//
//   - SCP02 (GP Card Specification 2.2 E.4.1): C_DeriveKey with
//     CKM_DES3_CBC_ENCRYPT_DATA, zero IV, of constant || sequence counter
//     || 00..00 under the static key;
//   - SCP03 (Amendment D 6.2.1): the KDF of 4.1.5 as CKM_AES_CMAC
//     signatures under the static key, with the challenges as context.
//
// ENC, MAC and RMAC are returned: the host's secure channel code needs
// them. The static keys stay in the token (except that keys diversified
// by MethodSCP03KDF pass through the host as they are computed, see
// Capabilities). The DEK stays there too
// (SessionKeys.DEK nil, Handle set) when the token can wrap under it;
// for SCP02 on a token that cannot wrap under a 3DES key, the session DEK
// is returned so that Translate can encrypt on the host, as Capabilities
// says.
func (m *Module) SessionKeys(ctx context.Context, req perso.SessionKeyRequest) (*perso.SessionKeys, error) {
	if err := checkChannel(req); err != nil {
		return nil, err
	}
	ch := &channel{m: m, kmc: req.KMC, method: req.Method, kdd: clone(req.KDD), scp: req.SCP, seq: clone(req.Sequence)}
	out := &perso.SessionKeys{SCP: req.SCP}
	err := m.do(ctx, func(s *session) error {
		kmc, err := m.masterKey(s, req.KMC, req.SCP.Version == 0x02)
		if err != nil {
			return err
		}
		if req.SCP.Version == 0x02 {
			return m.scp02Keys(s, kmc, ch, out)
		}
		return m.scp03Keys(s, kmc, ch, req.Context, out)
	})
	if err != nil {
		out.Zero()
		return nil, err
	}
	if out.DEK == nil {
		out.Handle = ch
	}
	return out, nil
}

// staticKey returns the card's static key k: the KMC itself for Method 0,
// else the key diversified from it as a session object with the usages
// given (which the caller destroys when own is true).
func (m *Module) staticKey(s *session, kmc keyInfo, ch *channel, k perso.GPKey, usage ...uint) (h p11.ObjectHandle, own bool, err error) {
	switch ch.method {
	case 0:
		return kmc.h, false, nil
	case perso.MethodSCP03KDF:
		h, _, err = m.kdfCMAC(s, kmc, scp03Fixed(ch.kdd, k), usage...)
		return h, err == nil, err
	}
	t := with(sessionKey(p11.CKK_DES2, 0, usage...), p11.CKA_EXTRACTABLE, false)
	h, err = m.deriveEncrypt(s, kmc.h, p11.CKM_DES3_ECB_ENCRYPT_DATA, gpDiversificationData(ch.method, ch.kdd, k), t)
	if err != nil {
		return 0, false, fail(fmt.Sprintf("diversifying card key %d from %s", k, ch.kmc), err)
	}
	return h, true, nil
}

// scp03Fixed is the fixed input of kdf.DiversifySCP03 after the counter:
// 00 00 00 k 00 || KDD.
func scp03Fixed(kdd []byte, k perso.GPKey) []byte {
	fixed := make([]byte, 5+len(kdd))
	fixed[3] = byte(k)
	copy(fixed[5:], kdd)
	return fixed
}

// scp02Session derives the SCP02 session key for constant from static
// (GP Card Specification 2.2 E.4.1) as a session object with the template.
func (m *Module) scp02Session(s *session, static p11.ObjectHandle, constant uint16, seq []byte, template []*p11.Attribute) (p11.ObjectHandle, error) {
	if !m.feat.has(p11.CKM_DES3_CBC_ENCRYPT_DATA) {
		return 0, fmt.Errorf("pkcs11: %w: SCP02 session keys need CKM_DES3_CBC_ENCRYPT_DATA, which the token lacks", perso.ErrUnsupported)
	}
	data := make([]byte, 16)
	data[0], data[1] = byte(constant>>8), byte(constant)
	copy(data[2:], seq)
	var pin runtime.Pinner
	defer pin.Unpin()
	h, err := m.ctx.DeriveKey(s.h, cbcEncryptDataMech(p11.CKM_DES3_CBC_ENCRYPT_DATA, &pin, make([]byte, 8), data), static, template)
	return h, fail(fmt.Sprintf("SCP02 session key %04X", constant), err)
}

func (m *Module) scp02Keys(s *session, kmc keyInfo, ch *channel, out *perso.SessionKeys) error {
	var statics [4]p11.ObjectHandle // by GPKey
	for k := perso.GPKeyENC; k <= perso.GPKeyDEK; k++ {
		h, own, err := m.staticKey(s, kmc, ch, k, p11.CKA_DERIVE)
		if err != nil {
			return err
		}
		if own {
			defer m.destroy(s, h)
		}
		statics[k] = h
	}
	readOut := func(static p11.ObjectHandle, constant uint16) ([]byte, error) {
		h, err := m.scp02Session(s, static, constant, ch.seq, readable(sessionKey(p11.CKK_GENERIC_SECRET, 16)))
		if err != nil {
			return nil, err
		}
		defer m.destroy(s, h)
		v, err := m.value(s, h)
		return v, fail("reading a session key", err)
	}
	var err error
	if out.ENC, err = readOut(statics[perso.GPKeyENC], kdf.SCP02ConstENC); err != nil {
		return err
	}
	if out.MAC, err = readOut(statics[perso.GPKeyMAC], kdf.SCP02ConstCMAC); err != nil {
		return err
	}
	if out.RMAC, err = readOut(statics[perso.GPKeyMAC], kdf.SCP02ConstRMAC); err != nil {
		return err
	}
	if !m.feat.des3Wrap {
		out.DEK, err = readOut(statics[perso.GPKeyDEK], kdf.SCP02ConstDEK)
	}
	return err
}

func (m *Module) scp03Keys(s *session, kmc keyInfo, ch *channel, context []byte, out *perso.SessionKeys) error {
	keyLen := kmc.length
	if _, ok := aesKeyType(keyLen); !ok {
		return fmt.Errorf("pkcs11: %w: AES KMC of %d bytes", perso.ErrUnsupported, keyLen)
	}
	derive := func(k perso.GPKey, constant byte) ([]byte, error) {
		static, own, err := m.staticKey(s, kmc, ch, k, p11.CKA_SIGN)
		if err != nil {
			return nil, err
		}
		if own {
			defer m.destroy(s, static)
		}
		return m.scp03Session(s, static, constant, context, keyLen)
	}
	var err error
	if out.ENC, err = derive(perso.GPKeyENC, kdf.SCP03SENC); err != nil {
		return err
	}
	if out.MAC, err = derive(perso.GPKeyMAC, kdf.SCP03SMAC); err != nil {
		return err
	}
	if out.RMAC, err = derive(perso.GPKeyMAC, kdf.SCP03SRMAC); err != nil {
		return err
	}
	if !m.feat.aesCBC {
		if ch.method == 0 {
			return fmt.Errorf("pkcs11: %w: the token cannot wrap with CKM_AES_CBC under the KMC %s, and the KMC cannot leave it", perso.ErrUnsupported, ch.kmc)
		}
		// The diversified DEK passes through the host anyway (see kdfCMAC).
		out.DEK, err = m.counterCMAC(s, kmc.h, append([]byte{0}, scp03Fixed(ch.kdd, perso.GPKeyDEK)...), 0, keyLen)
	}
	return err
}

// scp03Session derives an SCP03 session key of n bytes from the static
// key with the data derivation scheme of GP Amendment D 4.1.5 (NIST SP
// 800-108 counter mode, AES-CMAC): the PRF input is the label (eleven zero
// bytes and the derivation constant), a zero separator, L (the output
// length in bits, 2 bytes), the counter i and the context.
func (m *Module) scp03Session(s *session, static p11.ObjectHandle, constant byte, context []byte, n int) ([]byte, error) {
	in := make([]byte, 16+len(context))
	in[11] = constant
	bits := 8 * n
	in[13], in[14] = byte(bits>>8), byte(bits)
	copy(in[16:], context)
	return m.counterCMAC(s, static, in, 15, n)
}

// cardDEK returns the DEK that Translate encrypts under, as a token
// object with CKA_WRAP: the SCP02 session DEK, or the SCP03 static DEK.
func (m *Module) cardDEK(s *session, ch *channel) (h p11.ObjectHandle, own bool, err error) {
	kmc, err := m.masterKey(s, ch.kmc, ch.scp.Version == 0x02)
	if err != nil {
		return 0, false, err
	}
	if ch.scp.Version == 0x03 {
		return m.staticKey(s, kmc, ch, perso.GPKeyDEK, p11.CKA_WRAP)
	}
	static, ownStatic, err := m.staticKey(s, kmc, ch, perso.GPKeyDEK, p11.CKA_DERIVE)
	if err != nil {
		return 0, false, err
	}
	if ownStatic {
		defer m.destroy(s, static)
	}
	h, err = m.scp02Session(s, static, kdf.SCP02ConstDEK, ch.seq, with(sessionKey(p11.CKK_DES2, 0, p11.CKA_WRAP), p11.CKA_EXTRACTABLE, false))
	return h, err == nil, err
}

// Translate opens a secret sealed under the KEK and encrypts it for the
// card: 3DES-ECB under the SCP02 session DEK or AES-CBC with a zero IV
// under the SCP03 static DEK, after ISO/IEC 9797-1 padding method 2 when
// the value is not whole blocks.
//
// Inside the token, keys (SealKeys) and block-aligned values (SealValue)
// are unwrapped into session objects and wrapped under the DEK with
// C_WrapKey, so they never appear on the host. What the token cannot do,
// [Module.translateOnHost] does in one step; Capabilities lists those
// cases (on SoftHSM2: everything under SCP02, RSA components, and
// unaligned values).
func (m *Module) Translate(ctx context.Context, kek perso.KEKID, secret perso.Sealed, to *perso.SessionKeys) ([]byte, error) {
	if to == nil || (to.SCP.Version != 0x02 && to.SCP.Version != 0x03) {
		return nil, fmt.Errorf("pkcs11: %w: no SCP02 or SCP03 session keys to translate to", perso.ErrBadInput)
	}
	parts, err := secret.Parse()
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w: %w", perso.ErrBadInput, err)
	}
	ch, _ := to.Handle.(*channel)
	if to.DEK == nil && (ch == nil || ch.m != m || ch.scp != to.SCP) {
		return nil, fmt.Errorf("pkcs11: %w: session keys were not made by this module", perso.ErrBadInput)
	}
	var out []byte
	err = m.do(ctx, func(s *session) error {
		k, err := m.kek(s, kek)
		if err != nil {
			return err
		}
		var dek p11.ObjectHandle
		if to.DEK == nil {
			var own bool
			if dek, own, err = m.cardDEK(s, ch); err != nil {
				return err
			}
			if own {
				defer m.destroy(s, dek)
			}
			if out, err = m.translateInToken(s, k, kek, parts, dek, to.SCP); out != nil || err != nil {
				return err
			}
		}
		out, err = m.translateOnHost(s, k, kek, parts, to, dek)
		return err
	})
	return out, err
}

// translateInToken translates keys and block-aligned values without
// their clear value leaving the token. It returns nil, nil when the
// secret needs the host step.
func (m *Module) translateInToken(s *session, kek keyInfo, id perso.KEKID, parts perso.SealedParts, dek p11.ObjectHandle, scp perso.SCP) ([]byte, error) {
	bs := 8
	if scp.Version == 0x03 {
		bs = 16
	}
	var hs []p11.ObjectHandle
	defer func() {
		for _, h := range hs {
			m.destroy(s, h)
		}
	}()
	switch parts.Form {
	case perso.SealKeys:
		for _, k := range parts.Keys {
			if k.Type.Len()%bs != 0 {
				return nil, nil
			}
		}
		for i, k := range parts.Keys {
			k.KEK = id
			h, err := m.unwrapKey(s, kek, k)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
			hs = append(hs, h)
		}
	case perso.SealValue:
		if id.Scheme != perso.SchemeAESKW { // 3DES values carry padding to remove
			return nil, nil
		}
		h, err := m.unwrap(s, p11.CKM_AES_KEY_WRAP_PAD, kek, parts.Wrapped, sessionKey(p11.CKK_GENERIC_SECRET, 0), "a value under "+id.Label())
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
		got, err := m.ctx.GetAttributeValue(s.h, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE_LEN, nil)})
		if err != nil {
			return nil, fail("length of an unwrapped value", err)
		}
		if n := int(ulong(got[0].Value)); n == 0 || n%bs != 0 {
			return nil, nil
		}
	default:
		return nil, nil
	}
	return m.wrapForCard(s, dek, scp, hs)
}

// wrapForCard encrypts the values of the session objects hs, in order,
// under the DEK: 3DES-ECB for SCP02; AES-CBC for SCP03 with a zero IV,
// each C_WrapKey continuing the chain from the last ciphertext block.
func (m *Module) wrapForCard(s *session, dek p11.ObjectHandle, scp perso.SCP, hs []p11.ObjectHandle) ([]byte, error) {
	var out []byte
	if scp.Version == 0x02 {
		if !m.feat.des3Wrap {
			return nil, fmt.Errorf("pkcs11: %w: the token cannot wrap under a 3DES DEK", perso.ErrUnsupported)
		}
		for _, h := range hs {
			w, err := m.ctx.WrapKey(s.h, mech(p11.CKM_DES3_ECB, nil), dek, h)
			if err != nil {
				return nil, fail("C_WrapKey under the session DEK", err)
			}
			out = append(out, w...)
		}
		return out, nil
	}
	if !m.feat.aesCBC {
		return nil, fmt.Errorf("pkcs11: %w: the token cannot wrap with CKM_AES_CBC", perso.ErrUnsupported)
	}
	iv := make([]byte, 16)
	for _, h := range hs {
		w, err := m.ctx.WrapKey(s.h, mech(p11.CKM_AES_CBC, iv), dek, h)
		if err != nil {
			return nil, fail("C_WrapKey under the DEK", err)
		}
		if len(w) == 0 || len(w)%16 != 0 {
			return nil, fmt.Errorf("pkcs11: CKM_AES_CBC wrap returned %d bytes", len(w))
		}
		out = append(out, w...)
		iv = clone(w[len(w)-16:])
	}
	return out, nil
}

// translateOnHost is the one place where a sealed secret appears in clear
// on the host: it opens the secret (unwrapping it into a readable session
// object and reading it back), encrypts it for the card, and zeroes the
// clear value before returning. With the DEK on the host (to.DEK, SCP02 on
// a token that cannot wrap under 3DES) it encrypts there; with the DEK in
// the token it imports the padded value and wraps it under the DEK there.
func (m *Module) translateOnHost(s *session, kek keyInfo, id perso.KEKID, parts perso.SealedParts, to *perso.SessionKeys, dek p11.ObjectHandle) ([]byte, error) {
	clear, err := m.openSealed(s, kek, id, parts)
	defer crypt.Zero(clear)
	if err != nil {
		return nil, err
	}
	if to.DEK != nil {
		out, err := protect.ForCard(to.SCP.Version, to.DEK, clear)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: %w: %v", perso.ErrBadInput, err)
		}
		return out, nil
	}
	bs := 8
	if to.SCP.Version == 0x03 {
		bs = 16
	}
	v := clear
	if len(v)%bs != 0 {
		v = crypt.Pad(clear, bs, crypt.Pad2)
		defer crypt.Zero(v)
	}
	h, err := m.importKey(s, p11.CKK_GENERIC_SECRET, v)
	if err != nil {
		return nil, err
	}
	defer m.destroy(s, h)
	return m.wrapForCard(s, dek, to.SCP, []p11.ObjectHandle{h})
}

// openSealed returns the clear value of a sealed secret; the caller zeroes it.
// For SealRSAComponent it is the component, big-endian, left-padded to
// half the modulus length (rounded up).
func (m *Module) openSealed(s *session, kek keyInfo, id perso.KEKID, parts perso.SealedParts) ([]byte, error) {
	switch parts.Form {
	case perso.SealValue:
		mk := uint(p11.CKM_AES_KEY_WRAP_PAD)
		if id.Scheme == perso.SchemeDES3ECB {
			mk = p11.CKM_DES3_ECB
		}
		v, err := m.unwrapValue(s, kek, mk, parts.Wrapped, readable(sessionKey(p11.CKK_GENERIC_SECRET, 0)))
		if err != nil || id.Scheme != perso.SchemeDES3ECB {
			return v, err
		}
		u, err := crypt.Unpad2(v, 8)
		if err != nil {
			crypt.Zero(v)
			return nil, fmt.Errorf("pkcs11: %w: sealed value's padding", perso.ErrBadInput)
		}
		return u, nil

	case perso.SealKeys:
		var out []byte
		for i, k := range parts.Keys {
			v, err := m.unwrapValue(s, kek, keyWrapMech(id.Scheme), k.Wrapped, readable(sessionKey(ckKeyType(k.Type), 0)))
			if err == nil {
				err = checkKCV(k, v)
			}
			if err != nil {
				crypt.Zero(v)
				crypt.Zero(out)
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
			out = append(out, v...)
			crypt.Zero(v)
		}
		return out, nil

	case perso.SealRSAComponent:
		if id.Scheme != perso.SchemeAESKW {
			return nil, fmt.Errorf("pkcs11: %w: RSA component under a 3DES KEK", perso.ErrUnsupported)
		}
		attr := crtOrder[5-parts.Component].attr
		vs, err := m.unwrapRead(s, kek, p11.CKM_AES_KEY_WRAP_PAD, parts.Wrapped, cardPrivateKey(false), attr, p11.CKA_MODULUS)
		if err != nil {
			return nil, err
		}
		v, n := vs[0], new(big.Int).SetBytes(vs[1])
		half := (parts.ModLen + 1) / 2
		if (n.BitLen()+7)/8 != parts.ModLen || len(v) > half {
			crypt.Zero(v)
			return nil, fmt.Errorf("pkcs11: %w: sealed RSA key does not have the %d-byte modulus its header says", perso.ErrBadInput, parts.ModLen)
		}
		out := leftPad(v, half)
		if len(out) != len(v) {
			crypt.Zero(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("pkcs11: %w: sealed form %d", perso.ErrBadInput, parts.Form)
}

// unwrapRead unwraps into a readable session object, reads the
// attributes and destroys the object. The caller zeroes what it gets.
func (m *Module) unwrapRead(s *session, kek keyInfo, mechanism uint, wrapped []byte, template []*p11.Attribute, attrs ...uint) ([][]byte, error) {
	h, err := m.unwrap(s, mechanism, kek, wrapped, template, "a sealed secret")
	if err != nil {
		return nil, err
	}
	defer m.destroy(s, h)
	want := make([]*p11.Attribute, len(attrs))
	for i, a := range attrs {
		want[i] = p11.NewAttribute(a, nil)
	}
	got, err := m.ctx.GetAttributeValue(s.h, h, want)
	if err != nil {
		return nil, fail("reading an unwrapped secret", err)
	}
	vs := make([][]byte, len(got))
	for i, a := range got {
		vs[i] = a.Value
	}
	return vs, nil
}

// unwrapValue is unwrapRead of CKA_VALUE.
func (m *Module) unwrapValue(s *session, kek keyInfo, mechanism uint, wrapped []byte, template []*p11.Attribute) ([]byte, error) {
	vs, err := m.unwrapRead(s, kek, mechanism, wrapped, template, p11.CKA_VALUE)
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// checkKCV checks a key opened on the host against the KCV it was sealed
// with.
func checkKCV(k perso.ProtectedKey, v []byte) error {
	var kcv [3]byte
	var err error
	if k.Type.IsDES() {
		kcv, err = crypt.KCV(v)
	} else {
		kcv, err = crypt.KCVAES(v)
	}
	if err != nil {
		return fmt.Errorf("pkcs11: %w: opened %s key: %v", perso.ErrBadInput, k.Type, err)
	}
	if kcv != k.KCV {
		return fmt.Errorf("pkcs11: %w: opened %s key has KCV %X, want %X", perso.ErrBadInput, k.Type, kcv[:], k.KCV[:])
	}
	return nil
}
