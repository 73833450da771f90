package perso

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Record is one card's record of a batch file: its MIC groups, in the order
// the issuer wrote them. A record holds at least one group and each MIC at
// most once, so that every module is handed exactly one group per card.
//
// Raw keeps the record's bytes as they were parsed (nil for a record built
// in code or changed by SetGroup or PutApp); the groups alias it. Encoding
// always uses Groups, and because the encoding is canonical, encoding a
// parsed record gives Raw again.
type Record struct {
	Groups []Group
	Raw    []byte
}

// ParseRecord parses the bytes of one record (without the length that
// frames it in a file): its MIC groups, and the chip group's [ChipData] if
// there is one, which it checks but does not keep. Errors are
// *[FormatError] values with offsets relative to b.
func ParseRecord(b []byte) (*Record, error) {
	r, err := parseRecord(b, nil)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// parseRecord is ParseRecord; with a batch header, it also checks that the
// chip applications use only KEKs the header lists.
func parseRecord(b []byte, hdr *Header) (*Record, *FormatError) {
	if len(b) == 0 {
		return nil, errAt(0, "record", ErrMalformed, "no MIC groups")
	}
	if len(b) > MaxRecordLen {
		return nil, errAt(0, "record", ErrTooLong, "%d bytes exceed %d", len(b), MaxRecordLen)
	}
	gs, err := parseGroups(b)
	if err != nil {
		return nil, err
	}
	off := 0
	var seen [256]bool
	for i, g := range gs {
		if seen[g.MIC] {
			return nil, errAt(off, groupField(i, "MIC"), ErrMalformed, "%02X (%v) appears twice", uint8(g.MIC), g.MIC)
		}
		seen[g.MIC] = true
		if g.MIC == MICChip {
			if _, err := parseChipData(g.Data, hdr); err != nil {
				return nil, err.shift(off + GroupHeaderLen)
			}
		}
		off += GroupHeaderLen + len(g.Data)
	}
	return &Record{Groups: gs, Raw: b}, nil
}

// AppendTo appends the record's encoding to dst, after checking everything
// ParseRecord checks.
func (r *Record) AppendTo(dst []byte) ([]byte, error) {
	out, err := r.appendTo(dst, nil)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Marshal returns the record's encoding; see AppendTo.
func (r *Record) Marshal() ([]byte, error) { return r.AppendTo(nil) }

// encodedLen is the length of the record's encoding.
func (r *Record) encodedLen() int {
	n := 0
	for _, g := range r.Groups {
		n += GroupHeaderLen + len(g.Data)
	}
	return n
}

func (r *Record) appendTo(dst []byte, hdr *Header) ([]byte, *FormatError) {
	b := builder{buf: slices.Grow(dst, r.encodedLen()), base: len(dst)}
	for i, g := range r.Groups {
		b.group(i, g)
	}
	if b.err != nil {
		return dst, b.err
	}
	if _, err := parseRecord(b.buf[len(dst):], hdr); err != nil {
		return dst, err
	}
	return b.buf, nil
}

// Group returns the record's group for mic.
func (r *Record) Group(mic MIC) (Group, bool) {
	for _, g := range r.Groups {
		if g.MIC == mic {
			return g, true
		}
	}
	return Group{}, false
}

// SetGroup replaces the data of the record's group for mic, or appends a
// group when there is none. It clears Raw, which no longer describes the
// record. It fails for a reserved MIC.
func (r *Record) SetGroup(mic MIC, data []byte) error {
	if mic.Reserved() {
		return fmt.Errorf("%w: MIC %02X is reserved", ErrBadInput, uint8(mic))
	}
	r.Raw = nil
	for i := range r.Groups {
		if r.Groups[i].MIC == mic {
			r.Groups[i].Data = data
			return nil
		}
	}
	r.Groups = append(r.Groups, Group{MIC: mic, Data: data})
	return nil
}

// Chip parses the record's chip group. It returns nil and no error when the
// record has no chip group.
func (r *Record) Chip() (*ChipData, error) {
	g, ok := r.Group(MICChip)
	if !ok {
		return nil, nil
	}
	return ParseChipData(g.Data)
}

// PutApp puts app into the record's chip group: in place of the application
// with the same AID, or after the others, or in a new chip group at the end
// of the record. The other applications are copied byte for byte, so their
// MACs still verify; applications this code knows nothing of pass through.
// The new group is freshly allocated; the old bytes are not modified.
func (r *Record) PutApp(app *App) error {
	enc, err := app.encode()
	if err != nil {
		return err
	}
	// The application on its own must obey every rule of App, as it would
	// as the only one of a chip group; offsets count within enc.
	c := cursor{in: enc}
	if _, err := parseApp(&c, 0, nil); err != nil {
		return err
	}
	if c.left() != 0 {
		return errAt(c.pos, "chip data", ErrMalformed, "%d bytes after the last application", c.left())
	}
	var apps []App
	size := 2 + len(enc)
	if g, ok := r.Group(MICChip); ok {
		cd, err := ParseChipData(g.Data)
		if err != nil {
			return err
		}
		apps = cd.Apps
		size += len(g.Data)
	}
	out := make([]byte, 2, size)
	out[0] = ChipVersion
	replaced := false
	for i := range apps {
		if bytes.Equal(apps[i].AID, app.AID) {
			out, replaced = append(out, enc...), true
		} else {
			out = append(out, apps[i].Raw...)
		}
	}
	n := len(apps)
	if !replaced {
		out, n = append(out, enc...), n+1
	}
	if n > 0xFF {
		return errAt(1, "chip application count", ErrTooLong, "%d exceeds 255", n)
	}
	out[1] = byte(n)
	if len(out) > MaxGroupLen {
		return errAt(0, "chip data", ErrTooLong, "%d bytes exceed %d", len(out), MaxGroupLen)
	}
	return r.SetGroup(MICChip, out)
}

// ChipVersion is the version byte that starts a chip group's data.
const ChipVersion = 0x01

// Limits of the chip data.
const (
	MinAIDLen = 5  // ISO/IEC 7816-4 section 12.2.3: RID(5) || PIX(0..11)
	MaxAIDLen = 16 //
	MACLen    = 8  // both schemes MAC with 8 bytes; a shorter MAC is refused
)

// ChipData is the data of a chip group ([MICChip]): the card's
// applications, each with its own KEK, DGIs, MAC key and MAC. Its encoding:
//
//	chip := version(1)=01 || napps(1, 1..255) || napps * app
//	app  := aidLen(1, 5..16) || AID || bodyLen(4) || body
//	body := KEK issuer(4) || KEK version(1) || KEK scheme(1)
//	        || dgisLen(4) || DGI sequence (EMV CPS v1.1 section 4.2)
//	        || nSecret(1) || nSecret * DGI identifier(2)
//	        || MAC key type(1) || KCV(3) || len(1) || wrapped MAC key
//	        || macLen(1)=08 || MAC
//
// Lengths are big-endian. See [App] for the rules each application obeys.
type ChipData struct {
	Apps []App
}

// App is one chip application's data: the application it personalizes, the
// KEK its secrets are protected under, the DGIs to store in the order to
// store them, which of those DGIs carry a [Sealed] value, the
// per-application MAC key (protected under the same KEK) and the MAC.
//
// The rules: the AID is 5 to 16 bytes and unique within the chip data; the
// KEK's scheme is one this library knows; there is at least one DGI; the
// secret DGIs are listed in ascending order, each occurs exactly once among
// the DGIs, and each value is a well-formed Sealed value whose wrapped
// lengths fit the scheme; the MAC key is AES (SchemeAESKW) or DES2
// (SchemeDES3ECB), wrapped to the length the scheme gives it; the MAC is
// MACLen bytes. The MAC covers [App.MACInput].
//
// Raw keeps the application's bytes, aidLen through MAC, as they were
// parsed (nil for an App built in code); AddDGI and AddSecret clear it. The
// DGIs, MAC key and MAC alias it.
type App struct {
	AID    []byte
	KEK    KEKID
	DGIs   []DGI
	Secret []uint16
	MACKey ProtectedKey
	MAC    []byte
	Raw    []byte
}

// DGI returns the application's first DGI with the identifier tag.
func (a *App) DGI(tag uint16) (DGI, bool) {
	for _, d := range a.DGIs {
		if d.Tag == tag {
			return d, true
		}
	}
	return DGI{}, false
}

// IsSecret reports whether the DGI tag carries a [Sealed] value.
func (a *App) IsSecret(tag uint16) bool {
	_, ok := slices.BinarySearch(a.Secret, tag)
	return ok
}

// AddDGI appends a DGI with a value in clear.
func (a *App) AddDGI(tag uint16, value []byte) {
	a.Raw = nil
	if a.DGIs == nil {
		a.DGIs = make([]DGI, 0, 8) // a profile adds several: grow once or twice, not four times
	}
	a.DGIs = append(a.DGIs, DGI{Tag: tag, Value: value})
}

// AddSecret appends a DGI whose value is sealed under the application's KEK
// and lists it among the secret DGIs.
func (a *App) AddSecret(tag uint16, s Sealed) {
	a.AddDGI(tag, s)
	if i, ok := slices.BinarySearch(a.Secret, tag); !ok {
		a.Secret = slices.Insert(a.Secret, i, tag)
	}
}

// MACInput returns the bytes the application's MAC covers: from the AID
// length through the end of the wrapped MAC key. For a parsed App they are
// taken from Raw, exactly as received. Otherwise they are the canonical
// encoding of the fields, with a body length that counts a MAC of MACLen
// bytes whatever a.MAC holds, so that the MAC can be computed before it is
// set. It fails only when a field is too long to encode.
func (a *App) MACInput() ([]byte, error) {
	if n := len(a.Raw) - 1 - MACLen; a.Raw != nil && n > 0 && a.Raw[n] == MACLen {
		return a.Raw[:n:n], nil
	}
	withMAC := *a
	if len(withMAC.MAC) != MACLen {
		withMAC.MAC = make([]byte, MACLen)
	}
	enc, err := withMAC.encode()
	if err != nil {
		return nil, err
	}
	return enc[:len(enc)-1-MACLen], nil
}

// encode returns the application's encoding without checking its rules,
// only that each field fits its length.
func (a *App) encode() ([]byte, *FormatError) {
	b := builder{buf: make([]byte, 0, a.encodedLen())}
	b.app(0, a)
	return b.buf, b.err
}

// encodedLen is the length of the application's encoding when every field
// fits (a DGI counted with the 3-byte length it may need), so that encode
// allocates once.
func (a *App) encodedLen() int {
	n := 1 + len(a.AID) + 4 + 6 + 4 + 1 + 2*len(a.Secret) + 5 + len(a.MACKey.Wrapped) + 1 + len(a.MAC)
	for _, d := range a.DGIs {
		n += 2 + 3 + len(d.Value)
	}
	return n
}

// appField names field what of chip application i in errors. Encoding and
// parsing an application name its fields without the application (the
// success path formats nothing) and call it once, when one fails.
func appField(i int, what string) string { return fmt.Sprintf("chip app %d %s", i, what) }

// app appends application i; a field that cannot be encoded is named with
// appField.
func (b *builder) app(i int, a *App) {
	if b.err != nil {
		return
	}
	b.appFields(a)
	if b.err != nil {
		b.err.Field = appField(i, b.err.Field)
	}
}

func (b *builder) appFields(a *App) {
	b.count8(len(a.AID), "AID length")
	b.add(a.AID)
	b.lenPrefixed32(MaxGroupLen, "length", func(b *builder) {
		b.add(a.KEK.Issuer[:])
		b.u8(a.KEK.Version)
		b.u8(uint8(a.KEK.Scheme))
		b.lenPrefixed32(MaxGroupLen, "DGI sequence length", func(b *builder) {
			for _, d := range a.DGIs {
				if len(d.Value) > 0xFFFF {
					b.fail(fmt.Sprintf("DGI %04X", d.Tag), ErrTooLong, "%d bytes exceed 65535", len(d.Value))
					return
				}
				b.buf = AppendDGI(b.buf, d.Tag, d.Value)
			}
		})
		b.count8(len(a.Secret), "secret DGI count")
		for _, t := range a.Secret {
			b.u16(t)
		}
		if out, err := appendProtectedKey(b.buf, a.MACKey); err != nil {
			b.fail("MAC key", ErrTooLong, "%d wrapped bytes outside 1..%d", len(a.MACKey.Wrapped), maxWrappedKey)
		} else {
			b.buf = out
		}
		b.count8(len(a.MAC), "MAC length")
		b.add(a.MAC)
	})
}

// ParseChipData parses the data of a chip group and checks every rule of
// [App]. Errors are *[FormatError] values with offsets relative to b. The result
// aliases b.
func ParseChipData(b []byte) (*ChipData, error) {
	cd, err := parseChipData(b, nil)
	if err != nil {
		return nil, err
	}
	return cd, nil
}

// AppendTo appends the chip data's encoding to dst, after checking every
// rule ParseChipData checks.
func (c *ChipData) AppendTo(dst []byte) ([]byte, error) {
	b := builder{buf: dst, base: len(dst)}
	b.u8(ChipVersion)
	b.count8(len(c.Apps), "chip application count")
	for i := range c.Apps {
		b.app(i, &c.Apps[i])
	}
	if b.err != nil {
		return dst, b.err
	}
	if len(b.buf)-len(dst) > MaxGroupLen {
		return dst, errAt(0, "chip data", ErrTooLong, "%d bytes exceed %d", len(b.buf)-len(dst), MaxGroupLen)
	}
	if _, err := parseChipData(b.buf[len(dst):], nil); err != nil {
		return dst, err
	}
	return b.buf, nil
}

// Marshal returns the chip data's encoding; see AppendTo.
func (c *ChipData) Marshal() ([]byte, error) { return c.AppendTo(nil) }

// App returns the application with the given AID.
func (c *ChipData) App(aid []byte) (*App, bool) {
	for i := range c.Apps {
		if bytes.Equal(c.Apps[i].AID, aid) {
			return &c.Apps[i], true
		}
	}
	return nil, false
}

// parseChipData is ParseChipData; with a batch header, it also checks that
// the applications use only KEKs the header lists.
func parseChipData(b []byte, hdr *Header) (*ChipData, *FormatError) {
	c := cursor{in: b}
	if err := c.need(2, "chip header"); err != nil {
		return nil, err
	}
	if v := c.u8(); v != ChipVersion {
		return nil, errAt(0, "chip version", ErrVersion, "%d", v)
	}
	n := int(c.u8())
	if n == 0 {
		return nil, errAt(1, "chip application count", ErrMalformed, "no applications")
	}
	// Each application takes at least 32 bytes, which bounds what a count
	// that lies can make us allocate.
	cd := &ChipData{Apps: make([]App, 0, min(n, c.left()/32+1))}
	for i := range n {
		start := c.pos
		a, err := parseApp(&c, i, hdr)
		if err != nil {
			return nil, err
		}
		if _, dup := cd.App(a.AID); dup {
			return nil, errAt(start, appField(i, "AID"), ErrMalformed, "%X appears twice", a.AID)
		}
		cd.Apps = append(cd.Apps, a)
	}
	if c.left() != 0 {
		return nil, errAt(c.pos, "chip data", ErrMalformed, "%d bytes after the last application", c.left())
	}
	return cd, nil
}

// parseApp parses application i at c; a field that fails is named with
// appField.
func parseApp(c *cursor, i int, hdr *Header) (App, *FormatError) {
	a, err := parseAppFields(c, hdr)
	if err != nil {
		err.Field = appField(i, err.Field)
	}
	return a, err
}

func parseAppFields(c *cursor, hdr *Header) (App, *FormatError) {
	var a App
	start := c.pos
	if err := c.need(1, "AID length"); err != nil {
		return a, err
	}
	if n := int(c.u8()); n < MinAIDLen || n > MaxAIDLen {
		return a, errAt(start, "AID length", ErrMalformed, "%d outside %d..%d", n, MinAIDLen, MaxAIDLen)
	} else if err := c.need(int64(n), "AID"); err != nil {
		return a, err
	} else {
		a.AID = c.bytes(n)
	}
	if err := c.need(4, "length"); err != nil {
		return a, err
	}
	n := c.u32()
	if err := c.need(int64(n), "body"); err != nil {
		return a, err
	}
	body := c.sub(int(n))

	kekAt := body.pos
	if err := body.need(6, "KEK"); err != nil {
		return a, err
	}
	copy(a.KEK.Issuer[:], body.bytes(4))
	a.KEK.Version = body.u8()
	a.KEK.Scheme = Scheme(body.u8())
	if !a.KEK.Scheme.Valid() {
		return a, errAt(kekAt+5, "KEK scheme", ErrMalformed, "unknown scheme %02X", uint8(a.KEK.Scheme))
	}
	if _, ok := hdr.LookupKEK(a.KEK); hdr != nil && !ok {
		return a, errAt(kekAt, "KEK", ErrMalformed, "%v is not in the batch header", a.KEK)
	}

	dgisAt := body.pos
	if err := body.need(4, "DGI sequence length"); err != nil {
		return a, err
	}
	if n := body.u32(); int64(n) > int64(body.left()) {
		return a, errTruncated(dgisAt, "DGI sequence", int64(n), body.left())
	} else {
		dgis, err := ParseDGIs(body.bytes(int(n)))
		if err != nil {
			var de *DGIError
			off := dgisAt + 4
			if errors.As(err, &de) {
				off += de.Offset
			}
			return a, errCause(off, "DGI sequence", ErrMalformed, err)
		}
		if len(dgis) == 0 {
			return a, errAt(dgisAt, "DGI sequence", ErrMalformed, "no DGIs")
		}
		a.DGIs = dgis
	}

	secretAt := body.pos
	if err := body.need(1, "secret DGI count"); err != nil {
		return a, err
	}
	ns := int(body.u8())
	if err := body.need(int64(2*ns), "secret DGIs"); err != nil {
		return a, err
	}
	if ns > 0 {
		a.Secret = make([]uint16, ns)
	}
	for j := range a.Secret {
		a.Secret[j] = body.u16()
		if j > 0 && a.Secret[j] <= a.Secret[j-1] {
			return a, errAt(secretAt+1+2*j, "secret DGIs", ErrMalformed, "%04X after %04X: not in ascending order", a.Secret[j], a.Secret[j-1])
		}
	}
	if err := checkSecrets(&a, secretAt); err != nil {
		return a, err
	}

	keyAt := body.pos
	if err := body.need(5, "MAC key"); err != nil {
		return a, err
	}
	k := ProtectedKey{KEK: a.KEK, Type: KeyType(body.u8())}
	copy(k.KCV[:], body.bytes(3))
	if wl := body.u8(); body.left() < int(wl) {
		return a, errTruncated(keyAt+4, "wrapped MAC key", int64(wl), body.left())
	} else {
		k.Wrapped = body.bytes(int(wl))
	}
	if !macKeyFits(a.KEK.Scheme, k.Type) {
		return a, errAt(keyAt, "MAC key type", ErrMalformed, "%v cannot MAC under %v", k.Type, a.KEK.Scheme)
	}
	if want := wrappedKeyLen(a.KEK.Scheme, k.Type); len(k.Wrapped) != want {
		return a, errAt(keyAt+4, "MAC key length", ErrMalformed, "%d wrapped bytes, %v gives %d", len(k.Wrapped), a.KEK.Scheme, want)
	}
	a.MACKey = k

	macAt := body.pos
	if err := body.need(1, "MAC length"); err != nil {
		return a, err
	}
	if m := int(body.u8()); m != MACLen {
		return a, errAt(macAt, "MAC length", ErrMalformed, "%d, want %d", m, MACLen)
	}
	if err := body.need(MACLen, "MAC"); err != nil {
		return a, err
	}
	a.MAC = body.bytes(MACLen)
	if body.left() != 0 {
		return a, errAt(body.pos, "body", ErrMalformed, "%d bytes after the MAC", body.left())
	}
	a.Raw = c.in[start:c.pos:c.pos]
	return a, nil
}

// checkSecrets checks that each secret DGI occurs exactly once and holds a
// well-formed Sealed value whose wrapped lengths fit the KEK's scheme.
func checkSecrets(a *App, at int) *FormatError {
	var few [16]int // how often each secret DGI occurs; most apps have a few
	seen := few[:min(len(a.Secret), len(few))]
	if len(a.Secret) > len(few) {
		seen = make([]int, len(a.Secret))
	}
	for _, d := range a.DGIs {
		j, ok := slices.BinarySearch(a.Secret, d.Tag)
		if !ok {
			continue
		}
		if seen[j]++; seen[j] > 1 {
			return errAt(at, "secret DGIs", ErrMalformed, "DGI %04X occurs more than once", d.Tag)
		}
		if err := checkSealed(Sealed(d.Value), a.KEK.Scheme); err != nil {
			return errCause(at, fmt.Sprintf("secret DGI %04X", d.Tag), ErrMalformed, err)
		}
	}
	for j, n := range seen {
		if n == 0 {
			return errAt(at+1+2*j, "secret DGIs", ErrMalformed, "DGI %04X is not in the DGI sequence", a.Secret[j])
		}
	}
	return nil
}

// checkSealed checks a sealed value's structure and that its wrapped
// lengths are ones the scheme produces: RFC 3394 adds 8 bytes to a key,
// RFC 5649 gives at least 16 bytes in multiples of 8, and 3DES-ECB keeps a
// key's length and pads values to a multiple of 8.
func checkSealed(s Sealed, scheme Scheme) error {
	p, err := s.Parse()
	if err != nil {
		return err
	}
	for j, k := range p.Keys {
		if want := wrappedKeyLen(scheme, k.Type); len(k.Wrapped) != want {
			return fmt.Errorf("%w: key %d: %d wrapped bytes, %v gives %d", ErrSealed, j, len(k.Wrapped), scheme, want)
		}
	}
	if p.Form == SealKeys {
		return nil
	}
	minLen := 8
	if scheme == SchemeAESKW {
		minLen = 16
	}
	if n := len(p.Wrapped); n < minLen || n%8 != 0 {
		return fmt.Errorf("%w: %d wrapped bytes under %v", ErrSealed, n, scheme)
	}
	return nil
}

// wrappedKeyLen is the length of a key of type t wrapped under scheme.
func wrappedKeyLen(scheme Scheme, t KeyType) int {
	if scheme == SchemeAESKW {
		return t.Len() + 8
	}
	return t.Len()
}

// macKeyFits reports whether a MAC key of type t serves the scheme's MAC:
// AES-CMAC takes any AES key, ISO/IEC 9797-1 MAC algorithm 3 a DES2 key.
func macKeyFits(scheme Scheme, t KeyType) bool {
	if scheme == SchemeDES3ECB {
		return t == KeyDES2
	}
	return t.Len() != 0 && !t.IsDES()
}
