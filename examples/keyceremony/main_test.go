package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/pkcs11"
	"github.com/cardperso/perso/hsm/soft"
)

// openToken opens the configured token, skipping the test when there is
// none outside CI.
func openToken(t *testing.T) *pkcs11.Module {
	t.Helper()
	cfg, err := pkcs11.ConfigFromEnv()
	if errors.Is(err, pkcs11.ErrNotConfigured) && os.Getenv("CI") != "true" {
		t.Skipf("keyceremony: %v (or run ./scripts/test)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestCeremony runs the ceremony with the test values under a random
// issuer and version, so that it shares the token with other tests, and
// checks that it prints labels and the test keys' published KCVs, no key.
func TestCeremony(t *testing.T) {
	m := openToken(t)
	var rnd [5]byte
	rand.Read(rnd[:])
	issuer := fmt.Sprintf("%X", rnd[:4])
	version := 2 + int(rnd[4])%250
	ctx := context.Background()
	labels := []string{fmt.Sprintf("ISSUER/v%d", version), fmt.Sprintf("KEK/%s/v%d", issuer, version)}
	for _, k := range testKeys {
		labels = append(labels, fmt.Sprintf("%s/v%d", k.label, version))
	}
	defer func() {
		for _, l := range labels {
			m.DestroyKeys(ctx, l)
		}
	}()

	var out bytes.Buffer
	args := []string{"-issuer", issuer, "-version", fmt.Sprint(version), "-issuer-bits", "1024"}
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"security module: PKCS#11 token",
		fmt.Sprintf("IMK-AC/v%d", version), "KCV 08D7B4", // EMV vectors IMK
		fmt.Sprintf("KMC-AES/v%d", version), "KCV 504A77", // GlobalPlatformPro SCP03 key
		fmt.Sprintf("KEK/%s/v%d", issuer, version),
		fmt.Sprintf("ISSUER/v%d", version), "RSA-1024  e=3",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, k := range testKeys {
		if strings.Contains(strings.ToUpper(got), k.value) {
			t.Errorf("output holds the value of %s", k.label)
		}
	}
	if n := len(regexp.MustCompile(`KCV [0-9A-F]{6}`).FindAllString(got, -1)); n != len(testKeys)+1 {
		t.Errorf("%d KCVs printed, want %d", n, len(testKeys)+1)
	}

	// The keys work: a derivation under the new KEK from the new IMK.
	kek := perso.KEKID{Version: uint8(version), Scheme: perso.SchemeAESKW}
	copy(kek.Issuer[:], mustHex(t, issuer))
	if _, err := m.Derive(ctx, perso.DeriveRequest{Master: perso.KeyRef{Label: "IMK-AC", Version: uint8(version)}, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: kek}); err != nil {
		t.Errorf("deriving with the ceremony's keys: %v", err)
	}

	// Again: the labels are taken, unless -replace.
	if err := run(ctx, args, &bytes.Buffer{}); !errors.Is(err, pkcs11.ErrExists) {
		t.Errorf("second ceremony: %v, want ErrExists", err)
	}
	if err := run(ctx, append(args, "-replace", "-random"), &bytes.Buffer{}); err != nil {
		t.Errorf("ceremony with -replace -random: %v", err)
	}
}

// TestKeyFile imports a software module key file into the token.
func TestKeyFile(t *testing.T) {
	m := openToken(t)
	ctx := context.Background()
	var rnd [4]byte
	rand.Read(rnd[:])
	issuer := fmt.Sprintf("%X", rnd)
	label := "KF" + issuer
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	kf := soft.KeyFile{
		Keys: []soft.KeyFileKey{{Label: label + "-KMC", Version: 1, Type: "AES-128", Value: "404142434445464748494A4B4C4D4E4F"}},
		KEKs: []soft.KeyFileKEK{{Issuer: issuer, Version: 1, Scheme: "AES-KW", Value: testKEK}},
		RSA:  []soft.KeyFileRSA{{Label: label + "-ISSUER", Version: 1, PKCS8: base64.StdEncoding.EncodeToString(der)}},
	}
	for _, l := range []string{label + "-KMC/v1", "KEK/" + issuer + "/v1", label + "-ISSUER/v1"} {
		defer m.DestroyKeys(ctx, l)
	}
	b, _ := json.Marshal(kf)
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"-keyfile", path}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{label + "-KMC/v1", "KCV 504A77", "KEK/" + issuer + "/v1", label + "-ISSUER/v1", "RSA-1024  e=65537"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	pub, err := m.PublicKey(ctx, perso.KeyRef{Label: label + "-ISSUER", Version: 1})
	if err != nil || !pub.Equal(&k.PublicKey) {
		t.Errorf("imported issuer key: %v", err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-issuer", "XYZ"},
		{"-version", "256"},
		{"-random", "-keyfile", "k.json"},
		{"extra"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	if _, err := fmt.Sscanf(s, "%X", &b); err != nil {
		t.Fatal(err)
	}
	return b
}
