package main

import (
	"fmt"
	"strings"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/reader/pcsc"
)

// readerStations opens a PC/SC station on each reader that spec selects:
// a reader's name (or a part of it that names one reader), its index in
// the resource manager's list, a comma-separated list of these, or "all"
// (pcsc.SelectReaders). The cards are fed by hand: a station waits for a
// card inserted after the last one. closeAll releases the stations.
func readerStations(spec string) (sts []perso.Station, closeAll func(), err error) {
	c, err := pcsc.Open()
	if err != nil {
		return nil, nil, err
	}
	all, err := c.Readers()
	c.Close()
	if err != nil {
		return nil, nil, err
	}
	names, err := pcsc.SelectReaders(all, spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%w; the readers are: %s", err, listReaders(all))
	}
	var opened []*pcsc.Station
	closeAll = func() {
		for _, st := range opened {
			st.Close()
		}
	}
	for _, name := range names {
		st, err := pcsc.NewStation(pcsc.StationConfig{Reader: name})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		opened = append(opened, st)
		sts = append(sts, st)
	}
	return sts, closeAll, nil
}

// listReaders numbers the readers as -reader takes them.
func listReaders(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %q", i, n)
	}
	return b.String()
}
