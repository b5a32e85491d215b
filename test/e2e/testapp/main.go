package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		listen := fs.String("listen", ":8080", "Comma-separated TCP addresses to answer on.")
		_ = fs.Parse(os.Args[2:])
		err = serve(strings.Split(*listen, ","))
	case "dial":
		if len(os.Args) != 3 {
			usage()
		}
		err = dial(os.Args[2], os.Stdout)
	case "get":
		if len(os.Args) != 3 {
			usage()
		}
		err = get(os.Args[2], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testapp serve [-listen :8080,...] | dial HOST:PORT | get URL")
	os.Exit(2)
}

// Answer is what the server writes on each connection.
type Answer struct {
	Listener string `json:"listener"`
	Peer     string `json:"peer"`
	Local    string `json:"local"`
}

func serve(addrs []string) error {
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", strings.TrimSpace(a))
		if err != nil {
			return err
		}
		log.Printf("listening on %s", ln.Addr())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					errs <- err
					return
				}
				go answer(c, a)
			}
		}()
	}
	return <-errs
}

func answer(c net.Conn, listener string) {
	defer c.Close()
	a := Answer{Listener: listener, Peer: c.RemoteAddr().String(), Local: c.LocalAddr().String()}
	log.Printf("connection on %s from %s", a.Local, a.Peer)
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = json.NewEncoder(c).Encode(a)
}

func dial(addr string, out io.Writer) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if line == "" {
		return errors.New("connection closed without an answer")
	}
	_, err = fmt.Fprint(out, line)
	return err
}

func get(url string, out io.Writer) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
