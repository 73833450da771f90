package pkcs11

import (
	"context"
	"errors"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
)

func TestKEKCheckValue(t *testing.T) {
	f := fixtureFor(t)
	want, err := crypt.KCVAES(kekValue)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.m.KEKCheckValue(context.Background(), f.kek)
	if err != nil {
		t.Fatalf("KEKCheckValue: %v", err)
	}
	if got != want {
		t.Errorf("KCV %X, want %X", got, want)
	}
	if _, err := f.m.KEKCheckValue(context.Background(), f.kekMiss); !errors.Is(err, perso.ErrNoSuchKey) {
		t.Errorf("KEKCheckValue of a missing KEK = %v, want ErrNoSuchKey", err)
	}
}
