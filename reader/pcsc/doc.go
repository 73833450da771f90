// Package pcsc gives access to smart cards in PC/SC readers: pcsc-lite's
// pcscd on Linux, the smart card services of Windows and macOS. It is the
// only package of the module that uses cgo and a C library
// (libpcsclite, through github.com/ebfe/scard), so the rest of the module
// builds without them.
//
// # Contexts, readers and cards
//
// [Open] establishes a [Context] with the resource manager (PC/SC
// Workgroup specification Part 5, "ICC Resource Manager Definition",
// section 3.1.3: SCardEstablishContext and the calls below).
// [Context.Readers] lists the readers and [SelectReaders] picks some of
// them by index or name, as a command line gives them.
// [Context.WaitForCard] and [Context.Wait] wait for a reader's state to
// change (SCardGetStatusChange); a context.Context bounds and cancels the
// wait (SCardCancel). [Context.Connect] connects to the card
// (SCardConnect), exclusively by default, with the protocol T=0 or T=1
// that the card's answer to reset offers (ISO/IEC 7816-3 sections 8 to
// 11).
//
// A [Card] is a perso.Transport: [Card.Transmit] carries one command APDU
// (ISO/IEC 7816-4 section 5.1) and returns the response with its status
// word untouched, so perso.Conn does the T=0 case handling (61xx, 6Cxx)
// whatever the protocol. [Card.Begin] and [Card.End] bracket a
// transaction (SCardBeginTransaction): no other application's command
// reaches the card between them, nor can another application reset it.
//
// # Resets and removals
//
// A card reset by someone else before a connection has sent anything is
// reconnected silently: nothing was lost. After the first command, a reset
// is an error matching [ErrCardReset]: the secure channel, the selected
// application and whatever else the session set up are gone, and
// carrying on would send commands into a different session than the one
// the host thinks it has.
//
// A card pulled out mid-exchange shows first as a transmission failure
// (the reader driver lost its card) and only later, when the resource
// manager looks at the reader again, as a removal. [Card.Transmit] asks
// for the reader's state, for up to [Options].RemovalCheck, and reports a
// card that has gone with an error matching [ErrCardRemoved].
//
// # Errors
//
// Failed calls return an [*Error]: the operation, the reader and the
// PC/SC return code. It matches with errors.Is one of the classes
// [ErrNoService], [ErrNoReaders], [ErrReaderUnavailable], [ErrNoCard],
// [ErrCardRemoved], [ErrCardReset], [ErrUnresponsiveCard],
// [ErrSharingViolation] and [ErrTimeout], and unwraps to the
// scard.Error. Every function that fails releases what it had opened.
//
// # Stations
//
// A [Station] is a perso.Station on one reader, with its own context so
// that the stations of a machine work in parallel, one goroutine each, as
// perso.Personalizer drives them. Each card's session is one exclusive
// connection and one transaction, from Insert to Eject, and ends with
// the card unpowered. A [Feeder], the machine's card transport, moves the
// cards in and out; without one, cards are fed by hand, and a station
// waits for a card inserted after the last one (the resource manager's
// card event count, in the high word of dwEventState).
//
// # Virtual cards
//
// The tests run the package against pcscd with vsmartcard's vpcd reader
// driver, whose readers ("Virtual PCD 00 00" on 127.0.0.1:35963, "Virtual
// PCD 00 01" on :35964) hold the virtual cards of reader/vcard
// (vcard.VPCD); vcard.VPCDFeeder is a Feeder that puts a fresh virtual
// card in for each session. Package pcsctest holds their shared set-up.
package pcsc
