package pkcs11

import (
	"context"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/hsmtest"
)

// TestConformance runs the suite every security module backend passes,
// with the suite's test keys put on the token under its labels.
func TestConformance(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	var labels []string
	defer func() {
		for _, l := range labels {
			f.m.DestroyKeys(ctx, l)
		}
	}()
	add := func(label string, create func() error) {
		t.Helper()
		f.m.DestroyKeys(ctx, label) // left over from an interrupted run
		labels = append(labels, label)
		if err := create(); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
	}
	for _, k := range hsmtest.TestKeys {
		role := RoleMaster
		if k.Ref == hsmtest.KMC || k.Ref == hsmtest.KMCAES {
			role = RoleKMC
		}
		add(k.Ref.String(), func() error {
			_, err := f.m.CreateKey(ctx, k.Ref, role, k.Type, k.Value)
			return err
		})
	}
	des3 := f.m.feat.des3Wrap
	for _, k := range hsmtest.TestKEKs {
		if k.ID.Scheme == perso.SchemeDES3ECB && !des3 {
			continue
		}
		add(k.ID.Label(), func() error {
			_, err := f.m.CreateKEK(ctx, k.ID, k.Value)
			return err
		})
	}
	add(hsmtest.IssuerKey.String(), func() error {
		_, err := f.m.CreateIssuerKey(ctx, hsmtest.IssuerKey, hsmtest.IssuerBits, hsmtest.IssuerExponent)
		return err
	})
	hsmtest.Run(t, f.m, hsmtest.Options{DES3KEK: des3})
}
