package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// textPrinter prints the views as indented text.
type textPrinter struct {
	w   io.Writer
	bw  *bufio.Writer
	err error
}

func (p *textPrinter) printf(depth int, format string, args ...any) {
	if p.bw == nil {
		p.bw = bufio.NewWriter(p.w)
	}
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.bw, strings.Repeat("  ", depth)+format+"\n", args...)
	}
}

func (p *textPrinter) header(h *headerView) error {
	p.printf(0, "batch file %s", h.File)
	p.printf(0, "header")
	p.printf(1, "format version  %d", h.Version)
	p.printf(1, "batch id        %s", h.BatchID)
	p.printf(1, "created         %s", h.Created.Format("2006-01-02 15:04:05 MST"))
	p.printf(1, "issuer          %s", h.Issuer)
	p.printf(1, "profiles        %s", strings.Join(h.Profiles, ", "))
	for _, k := range h.KEKs {
		p.printf(1, "KEK             %s, check value %s", k.KEK, k.KCV)
	}
	if h.ExtraBytes > 0 {
		p.printf(1, "extra           %d bytes of header fields this version does not know", h.ExtraBytes)
	}
	return p.err
}

func (p *textPrinter) record(r *recordView) error {
	if r.Error != "" {
		p.printf(0, "record %d at offset %d: BAD: %s", r.Index, r.Offset, r.Error)
		return p.err
	}
	p.printf(0, "record %d at offset %d", r.Index, r.Offset)
	for _, g := range r.Groups {
		if g.Module == "MIC "+g.MIC {
			p.printf(1, "MIC %s, %d bytes", g.MIC, g.Length)
		} else {
			p.printf(1, "MIC %s (%s), %d bytes", g.MIC, g.Module, g.Length)
		}
		switch {
		case g.Text != "":
			p.printf(2, "%q", g.Text)
		case g.Hex != "":
			p.printf(2, "%s", g.Hex)
		}
		p.tlvs(2, g.TLV)
		for _, a := range g.Apps {
			p.printf(2, "application %s", a.AID)
			p.printf(3, "KEK      %s", a.KEK)
			for _, d := range a.DGIs {
				p.dgi(3, d)
			}
			p.printf(3, "MAC key  %s", a.MACKey)
			p.printf(3, "MAC      %s", a.MAC)
		}
	}
	return p.err
}

func (p *textPrinter) dgi(depth int, d dgiView) {
	head := "DGI " + d.DGI
	if d.Name != "" {
		head += " (" + d.Name + ")"
	}
	switch {
	case d.Protected != nil:
		p.printf(depth, "%s: protected (%s, %s, KEK %s, %d bytes)", head, d.Protected.Form, d.Protected.Scheme, d.Protected.KEK, d.Protected.Length)
		return
	case d.Note != "" && d.Hex == "":
		p.printf(depth, "%s, %d bytes: %s", head, d.Length, d.Note)
		return
	}
	p.printf(depth, "%s, %d bytes", head, d.Length)
	if d.Hex != "" {
		p.printf(depth+1, "%s", d.Hex)
	}
	if d.Note != "" {
		p.printf(depth+1, "(%s)", d.Note)
	}
	p.tlvs(depth+1, d.TLV)
}

func (p *textPrinter) tlvs(depth int, ts []tlvView) {
	for _, t := range ts {
		name := t.Name
		if name == "" {
			name = "(not in the tag dictionary)"
		}
		if t.Children != nil || t.Value == "" {
			p.printf(depth, "%-6s %s, %d bytes", t.Tag, name, t.Length)
			p.tlvs(depth+1, t.Children)
			continue
		}
		p.printf(depth, "%-6s %s: %s", t.Tag, name, t.Value)
	}
}

func (p *textPrinter) trailer(t *trailerView) error {
	p.printf(0, "trailer (record count and digest checked)")
	p.printf(1, "records  %d", t.Records)
	for _, name := range slices.Sorted(maps.Keys(t.Counters)) {
		p.printf(1, "counter  %s = %d", name, t.Counters[name])
	}
	p.printf(1, "SHA-256  %s", t.Digest)
	return p.err
}

func (p *textPrinter) finish(error) error {
	if p.bw != nil && p.err == nil {
		p.err = p.bw.Flush()
	}
	return p.err
}

// jsonPrinter prints one JSON document,
//
//	{"header": ..., "records": [...], "trailer": ..., "error": "..."}
//
// streaming the records, so that its memory does not grow with the file.
// "trailer" is absent when the file ends in an error, and "error" when it
// does not.
type jsonPrinter struct {
	w       io.Writer
	bw      *bufio.Writer
	started bool // "records" is open
	n       int  // records printed
	trailed bool
	err     error
}

// raw writes s as it is.
func (p *jsonPrinter) raw(s string) {
	if p.bw == nil {
		p.bw = bufio.NewWriter(p.w)
	}
	if p.err == nil {
		_, p.err = p.bw.WriteString(s)
	}
}

// put writes s and the JSON encoding of v.
func (p *jsonPrinter) put(s string, v any) {
	b, err := json.Marshal(v)
	if err != nil && p.err == nil {
		p.err = err
	}
	p.raw(s)
	p.raw(string(b))
}

func (p *jsonPrinter) header(h *headerView) error {
	p.put(`{"header":`, h)
	p.raw(`,"records":[`)
	p.started = true
	return p.err
}

func (p *jsonPrinter) record(r *recordView) error {
	sep := "\n"
	if p.n > 0 {
		sep = ",\n"
	}
	p.n++
	p.put(sep, r)
	return p.err
}

func (p *jsonPrinter) trailer(t *trailerView) error {
	p.put("],\n"+`"trailer":`, t)
	p.trailed = true
	return p.err
}

func (p *jsonPrinter) finish(err error) error {
	switch {
	case !p.started:
		p.raw("{")
	case !p.trailed:
		p.raw("]")
	}
	if err != nil {
		if p.started {
			p.raw(",")
		}
		p.put(`"error":`, err.Error())
	}
	p.raw("}\n")
	if p.err == nil {
		p.err = p.bw.Flush()
	}
	return p.err
}
