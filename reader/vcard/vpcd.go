package vcard

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// VPCDPort is the TCP port on which pcscd's vpcd reader driver (vsmartcard)
// waits for the virtual card of its first reader, "Virtual PCD 00 00" (the
// CHANNELID 0x8C7B of the driver's reader.conf); its reader i waits on
// VPCDPort+i. Debian's vsmartcard-vpcd configures two readers.
const VPCDPort = 35963

// VPCDAddr returns the address of the local vpcd reader i, counted from 0:
// 127.0.0.1:35963 for the first, 127.0.0.1:35964 for the second.
func VPCDAddr(reader int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(VPCDPort+reader))
}

// The vpcd protocol (vsmartcard, "Creating a virtual smart card"): every
// message, in either direction, is a two-byte big-endian length and that
// many bytes. A one-byte message from the reader driver is a control code;
// any longer one is a command APDU, which the card answers with its
// response APDU. Of the control codes only vpcdATR gets an answer, the ATR.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdATR      = 0x04

	// vpcdMaxMsg is the longest message the two-byte length can frame.
	vpcdMaxMsg = 0xFFFF
)

// errVPCDEmpty is a message of length zero, which the driver never sends.
var errVPCDEmpty = errors.New("vcard: vpcd: empty message")

// link is the card's end of its connection to the reader driver.
type link interface {
	// Read blocks until data arrive, or the connection is shut down. On
	// Linux it sets TCP_QUICKACK first, so that the kernel acknowledges
	// what arrives at once rather than delay the acknowledgement.
	io.Reader
	io.Writer
	// shutdown ends the connection, so that a Read in progress returns;
	// it may be called from any goroutine, more than once.
	shutdown()
	// close releases the connection, once no Read is in progress.
	close()
}

// readVPCDMsg reads one vpcd message from r into buf, which must hold
// vpcdMaxMsg bytes, and returns it (aliasing buf). It returns io.EOF when r
// ends cleanly before a message and io.ErrUnexpectedEOF when it ends inside
// one. It allocates nothing.
func readVPCDMsg(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf))
	if n == 0 {
		return nil, errVPCDEmpty
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("vcard: vpcd: message of %d bytes: %w", n, err)
	}
	return buf[:n], nil
}

// appendVPCDMsg appends msg, framed, to dst.
func appendVPCDMsg(dst, msg []byte) ([]byte, error) {
	if len(msg) > vpcdMaxMsg {
		return dst, fmt.Errorf("vcard: vpcd: message of %d bytes does not fit the two-byte length", len(msg))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...), nil
}

// vpcdAnswer is what card does with one message from the reader driver:
// the response to send, if any. Power off, power on and reset all leave
// the card as a power cycle does ([Card.Reset]); the ATR request gets the
// ATR; anything longer is an APDU. The error is [ErrRemoved] when the card
// has been pulled (its [Fault]), or a protocol error for a control code
// the protocol does not have.
func vpcdAnswer(card *Card, msg []byte) (resp []byte, reply bool, err error) {
	if len(msg) == 1 {
		switch msg[0] {
		case vpcdPowerOff, vpcdPowerOn, vpcdReset:
			card.Reset()
			return nil, false, nil
		case vpcdATR:
			return card.ATR(), true, nil
		}
		return nil, false, fmt.Errorf("vcard: vpcd: unknown control code %02X", msg[0])
	}
	resp, err = card.Transmit(msg)
	if err != nil {
		return nil, false, err
	}
	return resp, true, nil
}

// VPCD is the card side of one vpcd reader of pcscd: it puts a virtual
// [Card] in the reader by connecting to the driver's socket, and answers
// the driver's power, reset and ATR requests and APDUs from the card. While
// it is connected, PC/SC applications see a card in the reader ("Virtual
// PCD 00 00" for port 35963, "Virtual PCD 00 01" for 35964) and talk to it
// as to any card.
//
// pcscd learns of an inserted or removed card when it next polls the
// reader (every 400 ms in pcsc-lite). [VPCD.Swap] replaces the card
// without either: the next card is there at once, which is how a test
// feeds fresh cards through one reader at full speed.
//
// A card whose [Fault] pulls it (FaultRemove, FaultTear) leaves the
// reader: the connection is closed instead of answering, which pcscd
// reports to its application as a failed exchange and then as a removed
// card. When pcscd closes the connection (it does after any failed
// exchange, and when it stops), the card has left the reader too.
//
// Before each read it sets TCP_QUICKACK on the socket (Linux): pcscd
// writes each message without TCP_NODELAY, and with delayed
// acknowledgements every exchange would wait about 40 ms for a timer. On
// Linux it reads with blocking system calls rather than through the
// runtime's network poller, which wakes the card sooner: the median round
// trip of an APDU through pcscd is about half as long, on two cores.
//
// The methods may be called from any goroutine.
type VPCD struct {
	// PowerOff, when set, is called after the reader driver powers the
	// card off (an application ended its connection with
	// SCARD_UNPOWER_CARD, or pcscd powered an idle card down). It is
	// called from the goroutine that serves the card, so it must not wait
	// for Remove or Insert; it may start a goroutine that calls them. Set
	// it before the first Insert.
	PowerOff func(*Card)

	addr string

	op sync.Mutex // serializes Insert, Swap and Remove

	mu   sync.Mutex
	card *Card
	link link          // the connection of the card in the reader
	done chan struct{} // closed when the card in the reader leaves it
	err  error         // why the last card left
}

// NewVPCD returns the card side of the vpcd reader at addr (see
// [VPCDAddr]), with no card in it.
func NewVPCD(addr string) *VPCD {
	done := make(chan struct{})
	close(done)
	return &VPCD{addr: addr, done: done}
}

// Addr returns the reader driver's address.
func (v *VPCD) Addr() string { return v.addr }

// Insert puts card in the reader: it connects to the driver, serves the
// card until it leaves, and returns once the driver has taken it. pcscd
// takes a card when it next polls an empty reader (every 400 ms), and asks
// for its ATR at once; it takes one card per reader, and leaves any other
// waiting. Insert fails if a card is in this VPCD already, if nothing
// listens at the address (pcscd is not running, or has no vpcd reader
// there), or when ctx is done before the driver took the card (another
// card holds the reader); the card is then out again.
func (v *VPCD) Insert(ctx context.Context, card *Card) error {
	if card == nil {
		return errors.New("vcard: vpcd: inserting no card")
	}
	v.op.Lock()
	defer v.op.Unlock()
	if v.Card() != nil {
		return fmt.Errorf("vcard: vpcd %s: a card is in the reader already", v.addr)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", v.addr)
	if err != nil {
		return fmt.Errorf("vcard: vpcd %s: %w", v.addr, err)
	}
	l, err := newLink(conn)
	if err != nil {
		conn.Close()
		return fmt.Errorf("vcard: vpcd %s: %w", v.addr, err)
	}
	done, taken := make(chan struct{}), make(chan struct{})
	v.mu.Lock()
	v.card, v.link, v.done, v.err = card, l, done, nil
	v.mu.Unlock()
	go v.serve(l, done, taken)
	select {
	case <-taken:
		return nil
	case <-done:
		return fmt.Errorf("vcard: vpcd %s: the reader driver dropped the card before taking it: %w", v.addr, v.Err())
	case <-ctx.Done():
	}
	l.shutdown()
	<-done
	v.mu.Lock()
	v.err = nil
	v.mu.Unlock()
	return fmt.Errorf("vcard: vpcd %s: the reader driver did not take the card (is another card in the reader?): %w", v.addr, context.Cause(ctx))
}

// Swap replaces the card in the reader with card and returns the one it
// took out. The reader sees no removal: its next power-on or ATR request
// reaches the new card. It fails if the reader is empty.
func (v *VPCD) Swap(card *Card) (*Card, error) {
	if card == nil {
		return nil, errors.New("vcard: vpcd: swapping in no card")
	}
	v.op.Lock()
	defer v.op.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.card
	if old == nil {
		return nil, fmt.Errorf("vcard: vpcd %s: no card in the reader", v.addr)
	}
	v.card = card
	return old, nil
}

// Remove takes the card out of the reader, if there is one: it closes the
// connection and waits until the card is no longer served. It returns the
// card it took out, or nil.
func (v *VPCD) Remove() *Card {
	v.op.Lock()
	defer v.op.Unlock()
	v.mu.Lock()
	card, l, done := v.card, v.link, v.done
	v.mu.Unlock()
	if l == nil {
		return nil
	}
	l.shutdown()
	<-done
	v.mu.Lock()
	v.err = nil
	v.mu.Unlock()
	return card
}

// Card returns the card in the reader, or nil when it is empty.
func (v *VPCD) Card() *Card {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.card
}

// Done returns a channel that is closed when the card now in the reader
// leaves it: removed, pulled by its fault, or dropped by pcscd. It is
// closed already when the reader is empty.
func (v *VPCD) Done() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.done
}

// Err returns why the last card left the reader: nil after [VPCD.Remove]
// or while a card is in it, an error wrapping [ErrRemoved] when its fault
// pulled it, or the connection's error when pcscd closed it (io.EOF) or it
// failed.
func (v *VPCD) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// serve answers the driver on l until the connection ends or the card is
// pulled, then empties the reader and closes done. It closes taken when
// the driver's first message arrives.
func (v *VPCD) serve(l link, done, taken chan struct{}) {
	err := v.answer(l, taken)
	l.close()
	v.mu.Lock()
	v.card, v.link, v.err = nil, nil, err
	close(done)
	v.mu.Unlock()
}

// answer runs the exchange loop of one connection and returns why it
// ended.
func (v *VPCD) answer(l link, taken chan struct{}) error {
	r := bufio.NewReaderSize(l, 4096)
	buf := make([]byte, vpcdMaxMsg)
	out := make([]byte, 0, 512)
	for {
		msg, err := readVPCDMsg(r, buf)
		if err != nil {
			return fmt.Errorf("vcard: vpcd %s: %w", v.addr, err)
		}
		if taken != nil {
			close(taken)
			taken = nil
		}
		card := v.Card()
		resp, reply, err := vpcdAnswer(card, msg)
		if err != nil {
			return fmt.Errorf("vcard: vpcd %s: %w", v.addr, err)
		}
		if !reply {
			if msg[0] == vpcdPowerOff && v.PowerOff != nil {
				v.PowerOff(card)
			}
			continue
		}
		if out, err = appendVPCDMsg(out[:0], resp); err != nil {
			return err
		}
		if _, err := l.Write(out); err != nil {
			return fmt.Errorf("vcard: vpcd %s: %w", v.addr, err)
		}
	}
}

// connLink is a link through the runtime's network poller.
type connLink struct{ net.Conn }

func (l connLink) shutdown() { l.Conn.Close() }
func (l connLink) close()    { l.Conn.Close() }
