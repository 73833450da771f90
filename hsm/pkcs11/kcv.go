package pkcs11

import (
	"context"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/cardperso/perso"
)

// KEKCheckValue implements perso.KEKChecker: the KEK's check value,
// computed in the token (the KEK wraps the check block, which is all a KEK
// may do). It lets the Personalizer refuse a batch prepared under another
// KEK before its first record.
func (m *Module) KEKCheckValue(ctx context.Context, id perso.KEKID) ([3]byte, error) {
	var kcv [3]byte
	err := m.do(ctx, func(s *session) error {
		ki, err := m.kek(s, id)
		if err != nil {
			return err
		}
		typ := perso.KeyAES128
		if ki.typ == p11.CKK_DES2 {
			typ = perso.KeyDES2
		}
		kcv, err = m.tokenKCV(s, ki.h, typ, []uint{p11.CKA_WRAP})
		if err != nil {
			return fmt.Errorf("pkcs11: KEK %s: %w", id.Label(), err)
		}
		return nil
	})
	return kcv, err
}

var _ perso.KEKChecker = (*Module)(nil)
