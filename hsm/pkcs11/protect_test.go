package pkcs11

import (
	"context"
	"crypto/aes"
	"errors"
	"fmt"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/protect"
	"github.com/google/go-cmp/cmp"
	p11 "github.com/miekg/pkcs11"
)

func TestSeal(t *testing.T) {
	f := fixtureFor(t)
	for _, n := range []int{1, 8, 15, 16, 17, 255, maxSealValue} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			clear := make([]byte, n)
			for i := range clear {
				clear[i] = byte(i*7 + n)
			}
			s, err := f.m.Seal(context.Background(), f.kek, clear)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Parse()
			if err != nil || p.Form != perso.SealValue {
				t.Fatalf("sealed value parses as %+v, %v; want form SealValue", p.Form, err)
			}
			if got := openValue(t, p.Wrapped); !cmp.Equal(got, clear) {
				t.Errorf("opened %X, sealed %X", got, clear)
			}
		})
	}
	for _, c := range []struct {
		name  string
		kek   perso.KEKID
		clear []byte
		want  error
	}{
		{"empty", f.kek, nil, perso.ErrBadInput},
		{"too long", f.kek, make([]byte, maxSealValue+1), perso.ErrBadInput},
		{"unknown KEK", f.kekMiss, []byte{1}, perso.ErrNoSuchKey},
		{"3DES KEK", f.kekDES, []byte{1}, perso.ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.Seal(context.Background(), c.kek, c.clear); !errors.Is(err, c.want) {
				t.Errorf("Seal: %v, want %v", err, c.want)
			}
		})
	}
}

func TestMAC(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	key, err := f.m.NewMACKey(ctx, f.kek)
	if err != nil {
		t.Fatal(err)
	}
	clear := openKey(t, key)
	if key.Type != perso.KeyAES128 || len(clear) != 16 {
		t.Fatalf("MAC key %v opens to %d bytes; want AES-128", key, len(clear))
	}
	if kcv, _ := crypt.KCVAES(clear); kcv != key.KCV {
		t.Errorf("MAC key KCV %X, want %X", key.KCV[:], kcv[:])
	}
	other, err := f.m.NewMACKey(ctx, f.kek)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(openKey(t, other), clear) {
		t.Fatal("two MAC keys are equal")
	}
	for _, n := range []int{0, 1, 16, 17, 300} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i)
		}
		got, err := f.m.MAC(ctx, key, data)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := aes.NewCipher(clear)
		want := crypt.CMAC(b, data)[:8]
		if !cmp.Equal(got, want) {
			t.Errorf("MAC of %d bytes: %X, reference %X", n, got, want)
		}
		if ref, err := protect.MAC(protect.AESKW, clear, data); err != nil || !cmp.Equal(got, ref) {
			t.Errorf("MAC of %d bytes: %X, host scheme gives %X (%v)", n, got, ref, err)
		}
		if err := f.m.VerifyMAC(ctx, key, data, got); err != nil {
			t.Errorf("VerifyMAC of a good MAC: %v", err)
		}
		bad := clone(got)
		bad[7] ^= 1
		if err := f.m.VerifyMAC(ctx, key, data, bad); !errors.Is(err, perso.ErrBadMAC) {
			t.Errorf("VerifyMAC of a bad MAC: %v, want ErrBadMAC", err)
		}
		if err := f.m.VerifyMAC(ctx, key, data, got[:4]); !errors.Is(err, perso.ErrBadMAC) {
			t.Errorf("VerifyMAC of a short MAC: %v, want ErrBadMAC", err)
		}
	}
	tampered := key
	tampered.Wrapped = clone(key.Wrapped)
	tampered.Wrapped[3] ^= 0x80
	short := key
	short.Wrapped = key.Wrapped[:16]
	missing := key
	missing.KEK = f.kekMiss
	for _, c := range []struct {
		name string
		key  perso.ProtectedKey
		want error
	}{
		{"tampered", tampered, perso.ErrBadInput},
		{"short", short, perso.ErrBadInput},
		{"unknown KEK", missing, perso.ErrNoSuchKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.MAC(ctx, c.key, []byte("data")); !errors.Is(err, c.want) {
				t.Errorf("MAC: %v, want %v", err, c.want)
			}
		})
	}
	if _, err := f.m.NewMACKey(ctx, f.kekDES); !errors.Is(err, perso.ErrUnsupported) {
		t.Errorf("NewMACKey under a 3DES KEK: %v, want ErrUnsupported", err)
	}
}

// TestKeysStayInside proves the master keys, the KEK and the issuer's
// private key cannot leave the token: their values cannot be read, they
// cannot be wrapped, their attributes cannot be changed, and a master key
// cannot be used to encrypt chosen data.
func TestKeysStayInside(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	gen := perso.KeyRef{Label: f.prefix + "GEN", Version: 1}
	if _, err := f.m.CreateKey(ctx, gen, RoleMaster, perso.KeyDES2, nil); err != nil {
		t.Fatal(err)
	}
	defer f.m.DestroyKeys(ctx, gen.String())
	cases := []struct {
		class uint
		label string
		value uint // the attribute that holds the secret
	}{
		{p11.CKO_SECRET_KEY, f.imk.String(), p11.CKA_VALUE},
		{p11.CKO_SECRET_KEY, f.kmc.String(), p11.CKA_VALUE},
		{p11.CKO_SECRET_KEY, f.kmcAES.String(), p11.CKA_VALUE},
		{p11.CKO_SECRET_KEY, gen.String(), p11.CKA_VALUE},
		{p11.CKO_SECRET_KEY, f.kek.Label(), p11.CKA_VALUE},
		{p11.CKO_PRIVATE_KEY, f.issuer.String(), p11.CKA_PRIVATE_EXPONENT},
	}
	err := f.m.do(ctx, func(s *session) error {
		kek, err := f.m.kek(s, f.kek)
		if err != nil {
			return err
		}
		for _, c := range cases {
			k, err := f.m.findKey(s, c.class, c.label)
			if err != nil {
				return err
			}
			if !k.copied {
				t.Errorf("%s: used without a session copy", c.label)
			}
			tok, err := f.m.findObjects(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, c.class), p11.NewAttribute(p11.CKA_LABEL, c.label), p11.NewAttribute(p11.CKA_TOKEN, true)}, 2)
			if err != nil || len(tok) != 1 {
				return fmt.Errorf("token object %s: %d found, %v", c.label, len(tok), err)
			}
			for _, h := range []p11.ObjectHandle{tok[0], k.h} {
				what := c.label + " (token object)"
				if h == k.h {
					what = c.label + " (session copy)"
				}
				if _, err := f.m.ctx.GetAttributeValue(s.h, h, []*p11.Attribute{p11.NewAttribute(c.value, nil)}); !isCKR(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
					t.Errorf("%s: reading its value: %v, want CKR_ATTRIBUTE_SENSITIVE", what, err)
				}
				for _, wm := range []uint{p11.CKM_AES_KEY_WRAP, p11.CKM_AES_KEY_WRAP_PAD} {
					if w, err := f.m.ctx.WrapKey(s.h, mech(wm, nil), kek.h, h); err == nil {
						t.Errorf("%s: wrapped under the KEK with %s into %d bytes", what, mechName(wm), len(w))
					}
				}
				got, err := f.m.ctx.GetAttributeValue(s.h, h, []*p11.Attribute{
					p11.NewAttribute(p11.CKA_SENSITIVE, nil),
					p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
				})
				if err != nil {
					return err
				}
				if got[0].Value[0] != 1 || got[1].Value[0] != 0 {
					t.Errorf("%s: sensitive %d, extractable %d; want 1, 0", what, got[0].Value[0], got[1].Value[0])
				}
				for _, a := range []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, true), p11.NewAttribute(p11.CKA_SENSITIVE, false)} {
					if err := f.m.ctx.SetAttributeValue(s.h, h, []*p11.Attribute{a}); err == nil {
						t.Errorf("%s: attribute 0x%X changed to make it readable", what, a.Type)
					}
				}
				if _, err := f.m.ctx.CopyObject(s.h, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_EXTRACTABLE, true)}); err == nil {
					t.Errorf("%s: copied into an extractable object", what)
				}
				if c.class == p11.CKO_SECRET_KEY && c.label != f.kek.Label() {
					mk := uint(p11.CKM_DES3_ECB)
					if k.typ == p11.CKK_AES {
						mk = p11.CKM_AES_ECB
					}
					if _, err := f.m.encrypt(s, mk, nil, h, make([]byte, 16)); err == nil {
						t.Errorf("%s: encrypted chosen data", what)
					}
				}
			}
		}
		g, err := f.m.findKey(s, p11.CKO_SECRET_KEY, gen.String())
		if err != nil {
			return err
		}
		got, err := f.m.ctx.GetAttributeValue(s.h, g.h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
			p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil),
		})
		if err != nil {
			return err
		}
		if got[0].Value[0] != 1 || got[1].Value[0] != 1 {
			t.Errorf("generated master key: never extractable %d, always sensitive %d; want 1, 1", got[0].Value[0], got[1].Value[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
