// netutil: the `curl` and `nc` the NodeConformance suite runs inside the agnhost
// image (alpine's curl and netcat-openbsd in the real one), as one static binary
// called by either name. Only what the suite uses:
//
//	curl [-g] [-q] [-s] [-f] [--max-time S] [--connect-timeout S] [-o FILE] http://HOST:PORT/PATH
//	    GET over HTTP/1.1, body to stdout; exit 7 cannot connect, 28 timed out, 22 HTTP >= 400 with -f
//	nc [-u] [-w S] [-z] [-v] HOST PORT
//	    sends stdin (UDP: as one datagram), prints what comes back until EOF or S seconds of quiet
//
// Any other nc form (-l, -e, ...) is handed to busybox's nc.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "netutil" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "curl":
		os.Exit(curl(args))
	case "nc":
		os.Exit(nc(args))
	default:
		fmt.Fprintln(os.Stderr, "netutil: call me as curl or nc")
		os.Exit(2)
	}
}

func seconds(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

func curl(args []string) int {
	var url, out string
	var maxTime, connectTimeout time.Duration
	fail, silent := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--max-time" || a == "-m":
			maxTime = seconds(next())
		case strings.HasPrefix(a, "--max-time="):
			maxTime = seconds(strings.TrimPrefix(a, "--max-time="))
		case a == "--connect-timeout":
			connectTimeout = seconds(next())
		case a == "-o" || a == "--output":
			out = next()
		case a == "-f" || a == "--fail":
			fail = true
		case a == "-s" || a == "--silent":
			silent = true
		case a == "-g" || a == "-q" || a == "-S" || a == "-L" || a == "-k" || a == "--globoff" || a == "--insecure":
		case strings.HasPrefix(a, "-") && len(a) > 1 && !strings.HasPrefix(a, "--") && strings.Trim(a[1:], "gqsSfLk") == "":
			fail = fail || strings.Contains(a, "f")
			silent = silent || strings.Contains(a, "s")
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "curl: option %s: not supported by this stand-in\n", a)
			return 2
		default:
			url = a
		}
	}
	if url == "" {
		fmt.Fprintln(os.Stderr, "curl: no URL specified")
		return 2
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	dialer := &net.Dialer{Timeout: connectTimeout}
	if connectTimeout == 0 {
		dialer.Timeout = 300 * time.Second
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	ctx := context.Background()
	if maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxTime)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "curl: (3) %v\n", err)
		return 3
	}
	req.Header.Set("User-Agent", "curl/8 (nodelet conformance stand-in)")
	res, err := client.Do(req)
	if err != nil {
		code := 7
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			code = 28
		}
		if !silent {
			fmt.Fprintf(os.Stderr, "curl: (%d) %v\n", code, err)
		}
		return code
	}
	defer res.Body.Close()
	if fail && res.StatusCode >= 400 {
		if !silent {
			fmt.Fprintf(os.Stderr, "curl: (22) The requested URL returned error: %d\n", res.StatusCode)
		}
		return 22
	}
	var w io.Writer = os.Stdout
	if out != "" && out != "-" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "curl: (23) %v\n", err)
			return 23
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, res.Body); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 28
		}
		return 56
	}
	return 0
}

func nc(args []string) int {
	udp, zero, verbose := false, false, false
	var wait time.Duration
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-w" && i+1 < len(args):
			i++
			wait = seconds(args[i])
		case strings.HasPrefix(a, "-w") && len(a) > 2:
			wait = seconds(a[2:])
		case strings.HasPrefix(a, "-") && len(a) > 1 && strings.Trim(a[1:], "uzvn") == "":
			udp = udp || strings.Contains(a, "u")
			zero = zero || strings.Contains(a, "z")
			verbose = verbose || strings.Contains(a, "v")
		case strings.HasPrefix(a, "-"):
			return busyboxNc()
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return busyboxNc()
	}
	addr := net.JoinHostPort(pos[0], pos[1])
	network := "tcp"
	if udp {
		network = "udp"
	}
	timeout := wait
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	conn, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		if verbose {
			fmt.Fprintf(os.Stderr, "nc: connect to %s (%s) failed: %v\n", addr, network, err)
		}
		return 1
	}
	defer conn.Close()
	if verbose {
		fmt.Fprintf(os.Stderr, "Connection to %s %s port [%s] succeeded!\n", pos[0], pos[1], network)
	}
	if zero {
		return 0
	}
	in, _ := io.ReadAll(os.Stdin)
	if len(in) > 0 {
		if _, err := conn.Write(in); err != nil {
			return 1
		}
	}
	if !udp {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	buf := make([]byte, 65536)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := conn.Read(buf)
		if n > 0 {
			os.Stdout.Write(buf[:n])
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0
			}
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return 0
			}
			return 1
		}
	}
}

func busyboxNc() int {
	argv := append([]string{"nc"}, os.Args[1:]...)
	if filepath.Base(os.Args[0]) == "netutil" {
		argv = append([]string{"nc"}, os.Args[2:]...)
	}
	err := syscall.Exec("/bin/busybox", argv, os.Environ())
	fmt.Fprintf(os.Stderr, "nc: cannot run busybox nc: %v\n", err)
	return 127
}
