package perso

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cardperso/perso/internal/gp"
)

// SecurityLevel is a GlobalPlatform secure channel security level, the P1
// of EXTERNAL AUTHENTICATE (GP Card Specification 2.2 E.5.2.1, Amendment D
// 7.1.2.1).
type SecurityLevel byte

const (
	LevelCMAC     SecurityLevel = 0x01 // C-MAC
	LevelCMACCDEC SecurityLevel = 0x03 // C-MAC and C-DECRYPTION
	LevelCMACRMAC SecurityLevel = 0x11 // C-MAC and R-MAC (SCP03)
	LevelAll      SecurityLevel = 0x33 // C-MAC, C-DECRYPTION, R-MAC and R-ENCRYPTION (SCP03)
)

// StoreDataMode says how secret DGIs are marked in STORE DATA, which cards
// differ on (GP Card Specification 2.2 11.11.2.1; EMV CPS v1.1 5.4.2).
type StoreDataMode uint8

const (
	// StoreSeparate sends each secret DGI in a STORE DATA of its own with
	// P1 b7-b6 = 11 ("encrypted with the DEK") and groups the clear DGIs in
	// commands with b7-b6 = 00. It suits every card.
	StoreSeparate StoreDataMode = iota
	// StoreAppDependent sends every command with b7-b6 = 01 ("application
	// dependent"): the application knows that DGIs 8000-8FFF are
	// encrypted, so clear and secret DGIs share commands and fewer
	// commands are sent.
	StoreAppDependent
)

// ModuleError is a failure of the security module during a card session:
// it is not the record's fault nor the card's, and the Personalizer stops
// the batch on it rather than fail every following card the same way.
// Errors of the module that wrap ErrBadInput or ErrBadMAC (a sealed value
// that does not open) are the record's and are not ModuleErrors.
type ModuleError struct {
	Op  string
	Err error
}

func (e *ModuleError) Error() string { return "perso: security module: " + e.Op + ": " + e.Err.Error() }
func (e *ModuleError) Unwrap() error { return e.Err }

// moduleErr wraps err as a ModuleError unless it is the record's fault.
func moduleErr(op string, err error) error {
	if errors.Is(err, ErrBadInput) || errors.Is(err, ErrBadMAC) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &ModuleError{Op: op, Err: err}
}

// ErrCardAuth wraps every failure to open a secure channel with a card: a
// card cryptogram that does not verify, or EXTERNAL AUTHENTICATE refused.
// The chip module never retries: repeated failures lock a card.
var ErrCardAuth = errors.New("perso: card authentication failed")

// ChipConfig configures a ChipModule.
type ChipConfig struct {
	// Translator is the bureau's security module.
	Translator Translator
	// KMC is the master key the card keys are diversified from, and
	// Diversification the method: MethodCPS, MethodVISA2, MethodSCP03KDF,
	// or 0 when the KMC is the cards' key itself.
	KMC             KeyRef
	Diversification Method
	// SCP is the protocol the cards must use; zero takes what the card
	// announces.
	SCP SCP
	// KeyVersion is P1 of INITIALIZE UPDATE; 0 takes the card's first key set.
	KeyVersion byte
	// Level is the secure channel's security level; default LevelCMAC.
	Level SecurityLevel
	// Mode and MaxData shape the STORE DATA commands: MaxData is the most
	// DGI bytes one command carries before secure messaging (default 239,
	// which fits a short APDU with C-MAC and C-DECRYPTION padding).
	Mode    StoreDataMode
	MaxData int
	// ClearDGIP1 and SecretDGIP1 override the P1 bits (without the last
	// block bit b8) of commands carrying clear and secret DGIs, for cards
	// that want other codings. Zero keeps the mode's.
	ClearDGIP1, SecretDGIP1 byte
}

// ChipModule is the [Module] for [MICChip]: it loads every application of
// a record's chip data onto the card, each in its own secure channel
// session, as EMV CPS v1.1 section 3 describes: SELECT the application,
// INITIALIZE UPDATE, EXTERNAL AUTHENTICATE with session keys that the
// Translator derives from the card keys, then the application's DGIs in
// STORE DATA commands, each secret DGI translated from the KEK to the
// session's DEK by the Translator, the last command marked as the last
// block.
//
// Application MACs are checked by the Personalizer before the card is
// touched; the module checks them again when used alone ([ChipModule.Check]).
type ChipModule struct {
	cfg ChipConfig
}

// NewChipModule checks the configuration and returns the module.
func NewChipModule(cfg ChipConfig) (*ChipModule, error) {
	if cfg.Translator == nil {
		return nil, errors.New("perso: chip module without a security module")
	}
	if cfg.KMC.Label == "" {
		return nil, errors.New("perso: chip module without a KMC")
	}
	switch cfg.Diversification {
	case 0, MethodCPS, MethodVISA2, MethodSCP03KDF:
	default:
		return nil, fmt.Errorf("perso: chip module: %s is not a card key diversification", cfg.Diversification)
	}
	if cfg.Level == 0 {
		cfg.Level = LevelCMAC
	}
	if cfg.MaxData == 0 {
		cfg.MaxData = 239
	}
	if cfg.MaxData < 16 || cfg.MaxData > 255 {
		return nil, fmt.Errorf("perso: chip module: STORE DATA of %d bytes: want 16 to 255", cfg.MaxData)
	}
	if cfg.SCP.Version != 0 {
		if err := (gp.Protocol{Version: cfg.SCP.Version, I: cfg.SCP.Param}).Check(); err != nil {
			return nil, fmt.Errorf("perso: chip module: %w", err)
		}
	}
	if cfg.ClearDGIP1 == 0 {
		cfg.ClearDGIP1 = 0x08
		if cfg.Mode == StoreAppDependent {
			cfg.ClearDGIP1 = 0x28
		}
	}
	if cfg.SecretDGIP1 == 0 {
		cfg.SecretDGIP1 = 0x68
		if cfg.Mode == StoreAppDependent {
			cfg.SecretDGIP1 = 0x28
		}
	}
	return &ChipModule{cfg: cfg}, nil
}

// Check verifies the MAC of every application of a chip group with the
// Translator. It touches no card.
func (m *ChipModule) Check(ctx context.Context, data []byte) error {
	cd, err := ParseChipData(data)
	if err != nil {
		return err
	}
	return checkApps(ctx, m.cfg.Translator, cd)
}

// checkApps verifies each application's MAC.
func checkApps(ctx context.Context, t Translator, cd *ChipData) error {
	for i := range cd.Apps {
		a := &cd.Apps[i]
		in, err := a.MACInput()
		if err != nil {
			return fmt.Errorf("perso: application %X: %w", a.AID, err)
		}
		if err := t.VerifyMAC(ctx, a.MACKey, in, a.MAC); err != nil {
			return fmt.Errorf("perso: application %X: %w", a.AID, err)
		}
	}
	return nil
}

// Personalize implements Module: every application of the chip group, in
// order, in one card session.
func (m *ChipModule) Personalize(ctx context.Context, card *Card, g Group) error {
	if card.Conn == nil {
		return errors.New("perso: chip module: the station has no chip connection")
	}
	cd, err := ParseChipData(g.Data)
	if err != nil {
		return err
	}
	for i := range cd.Apps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.load(ctx, card, &cd.Apps[i]); err != nil {
			return fmt.Errorf("perso: application %X: %w", cd.Apps[i].AID, err)
		}
	}
	return nil
}

// gpChannel adapts a gp.HostSession to the Conn's SecureChannel.
type gpChannel struct{ h *gp.HostSession }

func (c gpChannel) Wrap(cmd Command) (Command, error) {
	w, err := c.h.Wrap(gp.Command(cmd))
	return Command(w), err
}

func (c gpChannel) Unwrap(r Response) (Response, error) {
	u, err := c.h.Unwrap(gp.Response(r))
	return Response(u), err
}

// load personalizes one application.
func (m *ChipModule) load(ctx context.Context, card *Card, app *App) error {
	conn := card.Conn
	defer conn.SetSecureChannel(nil)
	if _, err := conn.Do(Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x00, Data: app.AID, Le: 256}); err != nil {
		return fmt.Errorf("SELECT: %w", err)
	}
	host, err := gp.NewHostSession(gp.HostConfig{KeyVersion: m.cfg.KeyVersion, Protocol: gp.Protocol{Version: m.cfg.SCP.Version, I: m.cfg.SCP.Param}})
	if err != nil {
		return err
	}
	defer host.Close()
	iu, err := host.InitializeUpdate()
	if err != nil {
		return err
	}
	resp, err := conn.Do(Command(iu))
	if err != nil {
		return fmt.Errorf("INITIALIZE UPDATE: %w", err)
	}
	r, err := host.ReadInitializeUpdate(resp)
	if err != nil {
		return fmt.Errorf("INITIALIZE UPDATE: %w", err)
	}
	if card.Identity == "" {
		card.Identity = "KDD " + strings.ToUpper(hex.EncodeToString(r.KDD))
	}
	scp := SCP{Version: r.Protocol.Version, Param: r.Protocol.I}
	sk, err := m.cfg.Translator.SessionKeys(ctx, SessionKeyRequest{
		KMC: m.cfg.KMC, Method: m.cfg.Diversification, KDD: r.KDD, SCP: scp,
		Sequence: r.Sequence, Context: host.Context(),
	})
	if err != nil {
		return moduleErr("session keys", err)
	}
	defer sk.Zero()
	ea, err := host.ExternalAuthenticate(gp.SessionKeys{ENC: sk.ENC, MAC: sk.MAC, RMAC: sk.RMAC}, gp.Level(m.cfg.Level))
	if err != nil {
		if errors.Is(err, gp.ErrCardCryptogram) {
			return fmt.Errorf("%w: %v", ErrCardAuth, err)
		}
		return err
	}
	if _, err := conn.Do(Command(ea)); err != nil {
		return fmt.Errorf("%w: EXTERNAL AUTHENTICATE: %w", ErrCardAuth, err)
	}
	conn.SetSecureChannel(gpChannel{host})
	cmds, err := m.storeData(ctx, app, sk)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if _, err := conn.Do(c); err != nil {
			return fmt.Errorf("STORE DATA block %d: %w", c.P2, err)
		}
	}
	return nil
}

// storeData returns the STORE DATA commands that load app: its DGIs in
// order, secret ones translated for the card, packed into as few commands
// as MaxData allows, long DGIs split across commands.
func (m *ChipModule) storeData(ctx context.Context, app *App, sk *SessionKeys) ([]Command, error) {
	var (
		cmds []Command
		cur  []byte
		p1   byte
		open bool
	)
	flush := func() {
		if open {
			cmds = append(cmds, Command{CLA: 0x80, INS: 0xE2, P1: p1, Data: cur, Le: -1})
		}
		cur, open = nil, false
	}
	for _, d := range app.DGIs {
		value := d.Value
		want := m.cfg.ClearDGIP1
		if app.IsSecret(d.Tag) {
			ct, err := m.cfg.Translator.Translate(ctx, app.KEK, Sealed(d.Value), sk)
			if err != nil {
				return nil, moduleErr(fmt.Sprintf("translating DGI %04X", d.Tag), err)
			}
			value, want = ct, m.cfg.SecretDGIP1
		}
		enc := AppendDGI(nil, d.Tag, value)
		if open && (want != p1 || m.cfg.Mode == StoreSeparate && want == m.cfg.SecretDGIP1) {
			flush()
		}
		for len(enc) > 0 {
			if !open {
				cur, p1, open = make([]byte, 0, m.cfg.MaxData), want, true
			}
			n := min(m.cfg.MaxData-len(cur), len(enc))
			cur = append(cur, enc[:n]...)
			enc = enc[n:]
			if len(cur) == m.cfg.MaxData {
				flush()
			}
		}
		if m.cfg.Mode == StoreSeparate && want == m.cfg.SecretDGIP1 {
			flush()
		}
	}
	flush()
	if len(cmds) == 0 {
		return nil, errors.New("no DGIs to store")
	}
	if len(cmds) > 256 {
		return nil, fmt.Errorf("%d STORE DATA commands exceed the 256 block numbers", len(cmds))
	}
	for i := range cmds {
		cmds[i].P2 = byte(i)
	}
	cmds[len(cmds)-1].P1 |= 0x80
	return cmds, nil
}
