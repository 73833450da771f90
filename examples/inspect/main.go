// Command inspect prints a batch file for a person to read: the header,
// each record's MIC groups, the chip applications and their DGIs, with the
// BER-TLV inside the DGIs decoded and named, and the trailer.
//
// Usage:
//
//	inspect [-show-pan] [-json] [file]
//
// Without a file it prints the worked example of the package documentation,
// which is also examples/testdata/worked-example.prso.
//
// Secret DGIs are shown only as "protected (scheme, KEK, length)": their
// values are sealed under the KEK and nothing here can open them. PANs (in
// tags 5A, 57, 56 and 9F6B, and any run of 12 to 19 digits in text) are
// masked to their first six and last four digits, and cardholder data
// (names, track discretionary data) and data objects that the tag dictionary
// does not know are left out, unless -show-pan is given. -json prints one
// JSON document for tools.
//
// A file that is not a valid batch file is reported with the error the
// reader gives, naming the record, the byte offset and the field, and
// inspect exits with status 1; a bad record is reported in its place and
// the rest of the file is still shown, and the exit status is 1 as well.
package main

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	showPAN := fs.Bool("show-pan", false, "show PANs, cardholder data and unknown data objects in full")
	asJSON := fs.Bool("json", false, "print one JSON document")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: inspect [-show-pan] [-json] [file]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}

	name := "worked example (examples/testdata/worked-example.prso)"
	var in io.Reader
	if fs.NArg() == 1 {
		name = fs.Arg(0)
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "inspect: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	} else {
		b, err := hex.DecodeString(workedExample)
		if err != nil {
			panic(err) // a constant of this program
		}
		in = bytes.NewReader(b)
	}

	var out printer = &textPrinter{w: stdout}
	if *asJSON {
		out = &jsonPrinter{w: stdout}
	}
	err := inspect(name, in, view{showPAN: *showPAN}, out)
	if ferr := out.finish(err); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "inspect: %v\n", err)
		return 1
	}
	return 0
}
