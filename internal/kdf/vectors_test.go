package kdf

import (
	"bytes"
	"testing"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/google/go-cmp/cmp"
)

type vectorFile struct {
	MasterKeyKCV []struct {
		Source string
		Key    crypttest.Hex
		KCV    crypttest.Hex
	} `json:"master_key_kcv"`
	ICCMasterKey []struct {
		Source string
		Method string
		IMK    crypttest.Hex
		PAN    string
		PSN    uint8
		MK     crypttest.Hex
	} `json:"icc_master_key"`
	SessionKey []struct {
		Source string
		MK     crypttest.Hex
		R      crypttest.Hex
		SK     crypttest.Hex
	} `json:"session_key"`
	AC []struct {
		Source string
		SK     crypttest.Hex
		Data   crypttest.Hex
		AC     crypttest.Hex
	}
	ARPC1 []struct {
		Source string
		Key    crypttest.Hex
		ARQC   crypttest.Hex
		ARC    crypttest.Hex
		ARPC   crypttest.Hex
	}
	EMVChain []struct {
		Source  string
		Method  string
		IMK     crypttest.Hex
		PAN     string
		PSN     uint8
		MKKCV   crypttest.Hex `json:"mk_kcv"`
		R       crypttest.Hex
		SKKCV   crypttest.Hex `json:"sk_kcv"`
		Data    crypttest.Hex
		ARQC    crypttest.Hex
		ARPCKey string `json:"arpc_key"`
		ARC     crypttest.Hex
		ARPC    crypttest.Hex
	} `json:"emv_chain"`
	GPDiversify []struct {
		Source string
		Method string
		KMC    crypttest.Hex
		KDD    crypttest.Hex
		Key    int
		Value  crypttest.Hex
		KCV    crypttest.Hex
	} `json:"gp_diversify"`
	SCP02SessionKey []struct {
		Source   string
		Static   crypttest.Hex
		Constant crypttest.Hex
		Seq      crypttest.Hex
		Key      crypttest.Hex
		KCV      crypttest.Hex
	} `json:"scp02_session_key"`
	SCP02DEKEncrypt []struct {
		Source     string
		Static     crypttest.Hex
		Seq        crypttest.Hex
		Plaintext  crypttest.Hex
		Ciphertext crypttest.Hex
	} `json:"scp02_dek_encrypt"`
	SCP03KDF []struct {
		Source   string
		Key      crypttest.Hex
		Constant byte
		Context  crypttest.Hex
		Bits     int
		KCV      crypttest.Hex
	} `json:"scp03_kdf"`
	CounterKDF []struct {
		Source string
		Key    crypttest.Hex
		Prefix crypttest.Hex
		Suffix crypttest.Hex
		Bytes  int
		KCV    crypttest.Hex
	} `json:"counter_kdf"`
}

func loadVectors(t *testing.T) *vectorFile {
	t.Helper()
	var v vectorFile
	crypttest.LoadJSON(t, "testdata/vectors.json", &v)
	return &v
}

// checkKCV checks that want is a prefix of the key check value of key:
// the DES one for 8, 16 and 24-byte keys unless aes is set.
func checkKCV(t *testing.T, what string, key, want []byte, aes bool) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	var (
		kcv [3]byte
		err error
	)
	if aes {
		kcv, err = crypt.KCVAES(key)
	} else {
		kcv, err = crypt.KCV(key)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.HasPrefix(kcv[:], want) {
		t.Errorf("%s KCV %X, want %X", what, kcv, want)
	}
}

// checkDESKey checks got against want modulo parity, and that got has
// odd parity.
func checkDESKey(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	if !crypt.EqualModParity(got, want) {
		t.Errorf("%s = %X, want %X (modulo parity)", what, got, want)
	}
	if !crypt.HasOddParity(got) {
		t.Errorf("%s = %X has bytes of even parity", what, got)
	}
}

func deriveMK(method string, imk []byte, pan string, psn uint8) ([]byte, error) {
	if method == "B" {
		return OptionB(imk, pan, psn)
	}
	return OptionA(imk, pan, psn)
}

func TestVectorsMasterKeyKCV(t *testing.T) {
	for _, c := range loadVectors(t).MasterKeyKCV {
		checkKCV(t, c.Source, c.Key, c.KCV, false)
	}
}

func TestVectorsICCMasterKey(t *testing.T) {
	v := loadVectors(t)
	if len(v.ICCMasterKey) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.ICCMasterKey {
		t.Run(c.Source, func(t *testing.T) {
			got, err := deriveMK(c.Method, c.IMK, c.PAN, c.PSN)
			if err != nil {
				t.Fatal(err)
			}
			checkDESKey(t, "option "+c.Method, got, c.MK)
		})
	}
}

func TestVectorsSessionKey(t *testing.T) {
	for _, c := range loadVectors(t).SessionKey {
		t.Run(c.Source, func(t *testing.T) {
			got, err := SessionKeyR(c.MK, [8]byte(c.R))
			if err != nil {
				t.Fatal(err)
			}
			checkDESKey(t, "session key", got, c.SK)
			// R = ATC || 00..00 is what SessionKey builds.
			if bytes.Equal(c.R[2:], make([]byte, 6)) {
				byATC, err := SessionKey(c.MK, uint16(c.R[0])<<8|uint16(c.R[1]))
				if err != nil || !bytes.Equal(byATC, got) {
					t.Errorf("SessionKey(ATC) = %X, %v; SessionKeyR = %X", byATC, err, got)
				}
			}
		})
	}
}

func TestVectorsACAndARPC(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.AC {
		t.Run(c.Source, func(t *testing.T) {
			got, err := AC(c.SK, c.Data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.AC), got); diff != "" {
				t.Errorf("AC (-want +got):\n%s", diff)
			}
		})
	}
	for _, c := range v.ARPC1 {
		t.Run(c.Source, func(t *testing.T) {
			got, err := ARPC1(c.Key, c.ARQC, c.ARC)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.ARPC), got); diff != "" {
				t.Errorf("ARPC (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVectorsEMVChain runs issuer master key -> ICC master key -> session
// key -> ARQC -> ARPC as an issuer host does.
func TestVectorsEMVChain(t *testing.T) {
	v := loadVectors(t)
	if len(v.EMVChain) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.EMVChain {
		t.Run(c.Source, func(t *testing.T) {
			mk, err := deriveMK(c.Method, c.IMK, c.PAN, c.PSN)
			if err != nil {
				t.Fatal(err)
			}
			checkKCV(t, "ICC master key", mk, c.MKKCV, false)
			sk, err := SessionKeyR(mk, [8]byte(c.R))
			if err != nil {
				t.Fatal(err)
			}
			checkKCV(t, "session key", sk, c.SKKCV, false)
			arqc, err := AC(sk, c.Data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.ARQC), arqc); diff != "" {
				t.Errorf("ARQC (-want +got):\n%s", diff)
			}
			if c.ARPCKey == "" {
				return
			}
			key := sk
			if c.ARPCKey == "mk" {
				key = mk
			}
			arpc, err := ARPC1(key, arqc, c.ARC)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.ARPC), arpc); diff != "" {
				t.Errorf("ARPC (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVectorsGPDiversify(t *testing.T) {
	v := loadVectors(t)
	if len(v.GPDiversify) != 16 {
		t.Fatalf("%d diversification vectors, want 16", len(v.GPDiversify))
	}
	for _, c := range v.GPDiversify {
		t.Run(c.Source, func(t *testing.T) {
			f := map[string]func([]byte, []byte, int) ([]byte, error){
				"CPS": DiversifyCPS, "VISA2": DiversifyVISA2, "SCP03": DiversifySCP03,
			}[c.Method]
			got, err := f(c.KMC, c.KDD, c.Key)
			if err != nil {
				t.Fatal(err)
			}
			if c.Method == "SCP03" {
				if len(got) != len(c.KMC) {
					t.Errorf("%d-byte key from a %d-byte KMC", len(got), len(c.KMC))
				}
				if len(c.Value) > 0 {
					if diff := cmp.Diff([]byte(c.Value), got); diff != "" {
						t.Errorf("key (-want +got):\n%s", diff)
					}
				}
				checkKCV(t, c.Method, got, c.KCV, true)
				return
			}
			checkDESKey(t, c.Method, got, c.Value)
			checkKCV(t, c.Method, got, c.KCV, false)
		})
	}
}

func TestVectorsSCP02(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.SCP02SessionKey {
		// The byte form, and the Cipher form with each kind of cipher.
		forms := map[string]func(uint16, []byte) ([]byte, error){
			"key bytes": func(cnst uint16, seq []byte) ([]byte, error) { return SCP02SessionKey(c.Static, cnst, seq) },
		}
		for name, b := range des3Ciphers(t, c.Static) {
			forms[name] = func(cnst uint16, seq []byte) ([]byte, error) { return SCP02SessionKeyCipher(b, cnst, seq) }
		}
		for form, derive := range forms {
			t.Run(form+"/"+c.Source, func(t *testing.T) {
				got, err := derive(uint16(c.Constant[0])<<8|uint16(c.Constant[1]), c.Seq)
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Key) > 0 {
					if diff := cmp.Diff([]byte(c.Key), got); diff != "" {
						t.Errorf("session key (-want +got):\n%s", diff)
					}
				}
				checkKCV(t, "session key", got, c.KCV, false)
			})
		}
	}
	for _, c := range v.SCP02DEKEncrypt {
		t.Run(c.Source, func(t *testing.T) {
			dek, err := SCP02SessionKey(c.Static, SCP02ConstDEK, c.Seq)
			if err != nil {
				t.Fatal(err)
			}
			b, err := crypt.NewDES3(dek)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(c.Plaintext))
			if err := crypt.EncryptECB(b, got, c.Plaintext); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.Ciphertext), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestVectorsSCP03(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.SCP03KDF {
		t.Run(c.Source, func(t *testing.T) {
			got, err := SCP03KDF(c.Key, c.Constant, c.Context, c.Bits)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.Bits/8 {
				t.Errorf("%d bytes for %d bits", len(got), c.Bits)
			}
			checkKCV(t, "session key", got, c.KCV, true)
		})
	}
	for _, c := range v.CounterKDF {
		t.Run(c.Source, func(t *testing.T) {
			got, err := counterCMAC(c.Key, c.Prefix, c.Suffix, c.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			checkKCV(t, "output", got, c.KCV, true)
		})
	}
}
