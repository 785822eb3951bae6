// Command vmkernel fetches, for make deps, the Debian kernel package the
// VM lab's images boot (the one linux-image-amd64 depends on), into the
// image cache unless it is there already, and prints its path.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/leasehold/leasehold/lab/vm/image"
)

func main() {
	dir, err := image.DefaultCacheDir()
	if err == nil {
		var deb string
		if deb, err = image.FetchKernel(context.Background(), dir); err == nil {
			fmt.Println(deb)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "vmkernel:", err)
	os.Exit(1)
}
