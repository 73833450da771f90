package pcsc_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/reader/pcsc"
)

func ExampleSelectReaders() {
	readers := []string{"Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR39U ICC Reader 01 00"}
	for _, spec := range []string{"all", "1", "acr39", "0,Virtual PCD 00 01"} {
		sel, err := pcsc.SelectReaders(readers, spec)
		fmt.Printf("%-22q %q %v\n", spec, sel, err)
	}
	// Output:
	// "all"                  ["Virtual PCD 00 00" "Virtual PCD 00 01" "ACS ACR39U ICC Reader 01 00"] <nil>
	// "1"                    ["Virtual PCD 00 01"] <nil>
	// "acr39"                ["ACS ACR39U ICC Reader 01 00"] <nil>
	// "0,Virtual PCD 00 01"  ["Virtual PCD 00 00" "Virtual PCD 00 01"] <nil>
}

// A personalization machine with a chip station on every reader: the
// Personalizer drives them in parallel, one goroutine each.
func ExampleStation() {
	c, err := pcsc.Open()
	if err != nil {
		log.Fatal(err) // no pcscd
	}
	readers, err := c.Readers()
	c.Close()
	if err != nil {
		log.Fatal(err)
	}
	var stations []perso.Station
	for _, r := range readers {
		st, err := pcsc.NewStation(pcsc.StationConfig{Reader: r})
		if err != nil {
			log.Fatal(err)
		}
		defer st.Close()
		stations = append(stations, st)
	}
	batch, err := os.Open("batch.prso")
	if err != nil {
		log.Fatal(err)
	}
	defer batch.Close()
	var p perso.Personalizer // with its Translator, Modules and Audit
	sum, err := p.Run(context.Background(), batch, stations...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d personalized, %d failed\n", sum.Personalized, sum.Failed)
}
