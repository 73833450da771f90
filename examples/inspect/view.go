package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cardperso/perso"
)

// The views are what inspect prints: the file's content with PANs masked and
// secrets described, never shown. The text printer and the JSON encoder both
// print them.

type headerView struct {
	File       string    `json:"file"`
	Version    int       `json:"version"`
	BatchID    string    `json:"batchId"`
	Created    time.Time `json:"created"`
	Issuer     string    `json:"issuer"`
	Profiles   []string  `json:"profiles"`
	KEKs       []kekView `json:"keks"`
	ExtraBytes int       `json:"extraBytes,omitempty"`
}

type kekView struct {
	KEK string `json:"kek"`
	KCV string `json:"kcv"`
}

type recordView struct {
	Index  int         `json:"index"`
	Offset int64       `json:"offset"`
	Groups []groupView `json:"groups,omitempty"`
	Error  string      `json:"error,omitempty"`
}

type groupView struct {
	MIC    string    `json:"mic"`
	Module string    `json:"module"`
	Length int       `json:"length"`
	Text   string    `json:"text,omitempty"`
	Hex    string    `json:"hex,omitempty"`
	TLV    []tlvView `json:"tlv,omitempty"`
	Apps   []appView `json:"apps,omitempty"`
}

type appView struct {
	AID    string    `json:"aid"`
	KEK    string    `json:"kek"`
	DGIs   []dgiView `json:"dgis"`
	MACKey string    `json:"macKey"`
	MAC    string    `json:"mac"`
}

type dgiView struct {
	DGI       string         `json:"dgi"`
	Name      string         `json:"name,omitempty"`
	Length    int            `json:"length"`
	Protected *protectedView `json:"protected,omitempty"`
	TLV       []tlvView      `json:"tlv,omitempty"`
	Hex       string         `json:"hex,omitempty"`
	Note      string         `json:"note,omitempty"`
}

type protectedView struct {
	Form   string `json:"form"`
	Scheme string `json:"scheme"`
	KEK    string `json:"kek"`
	Length int    `json:"length"`
}

type tlvView struct {
	Tag      string    `json:"tag"`
	Name     string    `json:"name,omitempty"`
	Length   int       `json:"length"`
	Value    string    `json:"value,omitempty"`
	Children []tlvView `json:"children,omitempty"`
}

type trailerView struct {
	Records  uint64            `json:"records"`
	Counters map[string]uint64 `json:"counters"`
	Digest   string            `json:"digest"`
}

// view turns what a Reader returns into views.
type view struct {
	showPAN bool // show PANs, cardholder data and unknown data objects
}

// errBadRecords reports that some records were bad; each was reported in its
// place.
var errBadRecords = errors.New("bad records")

// printer prints the views as they come, and at the end whatever error
// ended the file.
type printer interface {
	header(h *headerView) error
	record(r *recordView) error
	trailer(t *trailerView) error
	finish(err error) error
}

// inspect reads the batch file in and prints it.
func inspect(name string, in io.Reader, v view, out printer) error {
	r, err := perso.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := out.header(v.header(name, r.Header())); err != nil {
		return err
	}
	bad, i := 0, 0
	for ; ; i++ {
		off := r.Offset()
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		rv := &recordView{Index: i, Offset: off}
		switch {
		case errors.Is(err, perso.ErrBadRecord):
			bad++
			rv.Error = err.Error()
		case err != nil:
			return fmt.Errorf("%s: %w", name, err)
		default:
			rv.Groups = v.groups(rec)
		}
		if err := out.record(rv); err != nil {
			return err
		}
	}
	if err := out.trailer(v.trailer(r.Trailer())); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%s: %w: %d of %d", name, errBadRecords, bad, i)
	}
	return nil
}

func (v view) header(name string, h *perso.Header) *headerView {
	hv := &headerView{
		File:       name,
		Version:    perso.FormatVersion,
		BatchID:    hexs(h.BatchID[:]),
		Created:    h.Created,
		Issuer:     h.Issuer.String(),
		Profiles:   h.Profiles,
		ExtraBytes: len(h.Extra),
	}
	for _, k := range h.KEKs {
		hv.KEKs = append(hv.KEKs, kekView{KEK: k.KEK.String(), KCV: hexs(k.KCV[:])})
	}
	return hv
}

func (v view) trailer(t *perso.Trailer) *trailerView {
	return &trailerView{Records: t.Count, Counters: t.Counters, Digest: hexs(t.Digest[:])}
}

func (v view) groups(rec *perso.Record) []groupView {
	var out []groupView
	for _, g := range rec.Groups {
		gv := groupView{MIC: fmt.Sprintf("%02X", uint8(g.MIC)), Module: g.MIC.String(), Length: len(g.Data)}
		if g.MIC == perso.MICChip {
			// The Reader has checked the chip data, so it parses.
			cd, err := perso.ParseChipData(g.Data)
			if err == nil {
				for i := range cd.Apps {
					gv.Apps = append(gv.Apps, v.app(&cd.Apps[i]))
				}
				out = append(out, gv)
				continue
			}
		}
		switch tlvs, err := perso.ParseTLVs(g.Data, perso.Strict); {
		case len(g.Data) == 0:
		case err == nil && tlvs[0].Tag.Name() != "":
			gv.TLV = v.tlvs(tlvs)
		case printable(g.Data):
			gv.Text = v.maskText(string(g.Data))
		default:
			gv.Hex = v.maskText(hexs(g.Data))
		}
		out = append(out, gv)
	}
	return out
}

func (v view) app(a *perso.App) appView {
	av := appView{AID: hexs(a.AID), KEK: a.KEK.String(), MACKey: a.MACKey.String(), MAC: hexs(a.MAC)}
	for _, d := range a.DGIs {
		av.DGIs = append(av.DGIs, v.dgi(a, d))
	}
	return av
}

func (v view) dgi(a *perso.App, d perso.DGI) dgiView {
	dv := dgiView{DGI: fmt.Sprintf("%04X", d.Tag), Name: perso.DGIName(d.Tag), Length: len(d.Value)}
	if a.IsSecret(d.Tag) {
		dv.Protected = &protectedView{Form: sealForm(perso.Sealed(d.Value)), Scheme: a.KEK.Scheme.String(), KEK: a.KEK.String(), Length: len(d.Value)}
		return dv
	}
	if perso.SecretDGI(d.Tag) {
		// EMV CPS reserves 8000..8FFF for secrets; one in clear is shown
		// by its length only.
		dv.Note = "in clear although EMV CPS reserves this DGI for secrets; value not shown"
		return dv
	}
	info, _ := perso.LookupDGI(d.Tag)
	isRecord := strings.HasPrefix(info.Name, "SFI ")
	mode := perso.Strict
	if isRecord {
		mode = perso.Lenient
	}
	tlvs, err := perso.ParseTLVs(d.Value, mode)
	switch {
	case err == nil && len(tlvs) > 0 && (isRecord || allNamed(tlvs)):
		dv.TLV = v.tlvs(tlvs)
	case isRecord:
		dv.Hex = v.maskText(hexs(d.Value))
		dv.Note = fmt.Sprintf("record DGI that is not BER-TLV: %v", err)
	default:
		dv.Hex = v.maskText(hexs(d.Value))
	}
	return dv
}

func allNamed(tlvs []perso.TLV) bool {
	for _, t := range tlvs {
		if t.Tag.Name() == "" {
			return false
		}
	}
	return true
}

func sealForm(s perso.Sealed) string {
	p, err := s.Parse()
	if err != nil {
		return "malformed"
	}
	switch p.Form {
	case perso.SealValue:
		return "value"
	case perso.SealKeys:
		return fmt.Sprintf("%d keys", len(p.Keys))
	case perso.SealRSAComponent:
		return fmt.Sprintf("RSA component %d of a %d-bit key", p.Component, 8*p.ModLen)
	}
	return fmt.Sprintf("form %d", p.Form)
}

func (v view) tlvs(tlvs []perso.TLV) []tlvView {
	var out []tlvView
	for _, t := range tlvs {
		tv := tlvView{Tag: t.Tag.String(), Name: t.Tag.Name(), Length: len(t.Value)}
		if t.Tag.Constructed() {
			if kids, err := t.Children(); err == nil {
				tv.Children = v.tlvs(kids)
			} else {
				tv.Value = fmt.Sprintf("<malformed template: %v>", err)
			}
		} else {
			tv.Value = v.value(t)
		}
		out = append(out, tv)
	}
	return out
}

// value shows a primitive data object's value as its sensitivity allows.
func (v view) value(t perso.TLV) string {
	switch t.Tag.Sensitivity() {
	case perso.PublicData:
		if printable(t.Value) && len(t.Value) > 1 && !digitsOnly(t.Value) {
			return fmt.Sprintf("%s %q", hexs(t.Value), t.Value)
		}
		return hexs(t.Value)
	case perso.PANData:
		switch t.Tag {
		case 0x56:
			return v.track1(string(t.Value))
		case 0x5A:
			return v.pan(strings.TrimRight(hexs(t.Value), "F"))
		}
		return v.track2(strings.TrimRight(hexs(t.Value), "F"))
	case perso.SecretData:
		return fmt.Sprintf("<secret, %d bytes>", len(t.Value))
	}
	if v.showPAN {
		return hexs(t.Value)
	}
	if t.Tag.Sensitivity() == perso.PersonalData {
		return fmt.Sprintf("<personal data, %d bytes>", len(t.Value))
	}
	return fmt.Sprintf("<not in the tag dictionary, %d bytes>", len(t.Value))
}

func (v view) pan(digits string) string {
	if v.showPAN {
		return digits
	}
	return perso.MaskPAN(digits)
}

// track2 shows track 2 equivalent data (57, 9F6B): PAN, separator D,
// expiry YYMM, service code, then discretionary data, which may hold card
// verification values and is masked with the PAN.
func (v view) track2(s string) string {
	pan, rest, ok := strings.Cut(s, "D")
	if !ok {
		return v.pan(pan)
	}
	if !v.showPAN && len(rest) > 7 {
		rest = rest[:7] + strings.Repeat("*", len(rest)-7)
	}
	return v.pan(pan) + "D" + rest
}

// track1 shows track 1 equivalent data (56): format code, PAN, ^, name, ^,
// expiry YYMM, service code, discretionary data.
func (v view) track1(s string) string {
	parts := strings.SplitN(s, "^", 3)
	if len(parts) != 3 || len(parts[0]) < 2 {
		return v.maskText(s)
	}
	name, rest := parts[1], parts[2]
	if !v.showPAN {
		name = fmt.Sprintf("<name, %d characters>", len(name))
		if len(rest) > 7 {
			rest = rest[:7] + strings.Repeat("*", len(rest)-7)
		}
	}
	return parts[0][:1] + v.pan(parts[0][1:]) + "^" + name + "^" + rest
}

// maskText masks every run of 12 digits or more, which may be a PAN (12 to
// 19 digits) or hold one, keeping the first six and last four. Hex dumps go
// through it too, which masks a PAN in BCD.
func (v view) maskText(s string) string {
	if v.showPAN {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		if j-i >= 12 {
			b.WriteString(perso.MaskPAN(s[i:j]))
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

func hexs(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < ' ' && r != '\n' && r != '\t' || r == 0x7F {
			return false
		}
	}
	return true
}

func digitsOnly(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
