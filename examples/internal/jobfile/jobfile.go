// Package jobfile reads and writes the JSON job files of the examples: a
// data preparation job (its KEK, card number counter and application
// profiles) and a personalization setup (KMC, secure channel, STORE DATA).
package jobfile

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/vsvc"
)

// KEK is a KEK identifier as job files write it.
type KEK struct {
	Issuer  string `json:"issuer"`  // 8 hex digits
	Version uint8  `json:"version"` //
	Scheme  string `json:"scheme"`  // AES-KW or 3DES-ECB
}

// ID returns the identifier.
func (k KEK) ID() (perso.KEKID, error) {
	iss, err := soft.ParseIssuerID(k.Issuer)
	if err != nil {
		return perso.KEKID{}, err
	}
	sc, err := soft.ParseScheme(k.Scheme)
	if err != nil {
		return perso.KEKID{}, err
	}
	return perso.KEKID{Issuer: iss, Version: k.Version, Scheme: sc}, nil
}

// KEKOf returns the job file form of id.
func KEKOf(id perso.KEKID) KEK {
	return KEK{Issuer: id.Issuer.String(), Version: id.Version, Scheme: id.Scheme.String()}
}

// App is one application of a job: its profile's name and configuration.
type App struct {
	Profile string       `json:"profile"` // "emv" or "vsvc"
	EMV     *emv.Config  `json:"emv,omitempty"`
	VSVC    *vsvc.Config `json:"vsvc,omitempty"`
}

// Job is a data preparation job file.
type Job struct {
	KEK         KEK            `json:"kek"`
	Workers     int            `json:"workers,omitempty"`
	StopOnError bool           `json:"stop_on_error,omitempty"`
	Counter     *perso.Counter `json:"counter,omitempty"`
	OtherApps   []string       `json:"other_apps,omitempty"`
	Apps        []App          `json:"apps"`
}

// Read reads a job file.
func Read(path string) (*Job, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Decode(f)
}

// Decode reads a job file from r.
func Decode(r io.Reader) (*Job, error) {
	var j Job
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("job file: %w", err)
	}
	return &j, nil
}

// Write writes a job file.
func (j *Job) Write(path string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Build returns the perso.Job and the profile names.
func (j *Job) Build() (*perso.Job, []string, error) {
	kek, err := j.KEK.ID()
	if err != nil {
		return nil, nil, fmt.Errorf("job file: kek: %w", err)
	}
	job := &perso.Job{KEK: kek, Workers: j.Workers, StopOnError: j.StopOnError, Counter: j.Counter, OtherApps: j.OtherApps}
	var names []string
	for i, a := range j.Apps {
		var app perso.Application
		switch {
		case a.Profile == "emv" && a.EMV != nil:
			app, err = emv.New(*a.EMV)
		case a.Profile == "vsvc" && a.VSVC != nil:
			app, err = vsvc.New(*a.VSVC)
		default:
			return nil, nil, fmt.Errorf("job file: apps[%d]: profile %q needs its %q configuration", i, a.Profile, a.Profile)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("job file: apps[%d]: %w", i, err)
		}
		job.Apps = append(job.Apps, app)
		names = append(names, app.Name())
	}
	if len(job.Apps) == 0 {
		return nil, nil, fmt.Errorf("job file: no apps")
	}
	return job, names, nil
}

// Perso is a personalization setup file.
type Perso struct {
	KMC             perso.KeyRef `json:"kmc"`
	Diversification string       `json:"diversification"` // none, CPS, VISA2, SCP03
	SCP             string       `json:"scp,omitempty"`   // "02/55", "03/70"...; empty takes the card's
	Level           string       `json:"level,omitempty"` // cmac (default), cmac+cdec, cmac+rmac, all
	Mode            string       `json:"store_data,omitempty"`
	MaxData         int          `json:"max_data,omitempty"`
	Verify          bool         `json:"verify,omitempty"`
}

// ReadPerso reads a personalization setup file.
func ReadPerso(path string) (*Perso, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Perso
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("personalization setup: %w", err)
	}
	return &p, nil
}

// Write writes a personalization setup file.
func (p *Perso) Write(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ChipConfig returns the chip module configuration, without its Translator.
func (p *Perso) ChipConfig() (perso.ChipConfig, error) {
	c := perso.ChipConfig{KMC: p.KMC, MaxData: p.MaxData}
	switch p.Diversification {
	case "", "none":
	case "CPS", "cps":
		c.Diversification = perso.MethodCPS
	case "VISA2", "visa2":
		c.Diversification = perso.MethodVISA2
	case "SCP03", "scp03", "kdf":
		c.Diversification = perso.MethodSCP03KDF
	default:
		return c, fmt.Errorf("personalization setup: diversification %q is not none, CPS, VISA2 or SCP03", p.Diversification)
	}
	if p.SCP != "" {
		var v, i uint8
		if _, err := fmt.Sscanf(p.SCP, "%x/%x", &v, &i); err != nil {
			return c, fmt.Errorf("personalization setup: scp %q is not VERSION/I such as 02/55", p.SCP)
		}
		c.SCP = perso.SCP{Version: v, Param: i}
	}
	switch p.Level {
	case "", "cmac":
		c.Level = perso.LevelCMAC
	case "cmac+cdec":
		c.Level = perso.LevelCMACCDEC
	case "cmac+rmac":
		c.Level = perso.LevelCMACRMAC
	case "all":
		c.Level = perso.LevelAll
	default:
		return c, fmt.Errorf("personalization setup: level %q is not cmac, cmac+cdec, cmac+rmac or all", p.Level)
	}
	switch p.Mode {
	case "", "separate":
	case "app-dependent":
		c.Mode = perso.StoreAppDependent
	default:
		return c, fmt.Errorf("personalization setup: store_data %q is not separate or app-dependent", p.Mode)
	}
	return c, nil
}
