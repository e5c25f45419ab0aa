// Command testapp is the lab's test workload: an HTTP server that answers with
// the pod's hostname, so tests can see which pod behind a Service answered,
// and the client that checks pod networking and DNS from inside a pod.
//
// Its image has no shell and no busybox (there is nothing to build one from
// here), yet tests need `kubectl exec` and `kubectl logs`. So the image links
// /bin/sh to this binary, and testapp implements a few commands itself:
// when called as `sh -c "CMD ARGS"` (or `testapp sh -c ...`) it splits CMD on
// whitespace (no quoting, pipes or variables) and runs its own subcommand.
//
//	testapp [serve] [-addr :8080]   serve / (hostname), /healthz, /env/NAME
//	testapp get [-wait 20s] URL     HTTP GET; prints the body, exit 0 on a 2xx
//	testapp lookup [-wait 20s] NAME resolve NAME; prints its addresses
//	testapp hostname | env | echo ARGS | cat FILE... | ls DIR | sleep SECONDS
//	testapp exit CODE               exit with CODE (to test exec exit codes)
//	sh -c "echo hello"              the same subcommands through the sh shim
//
// get and lookup are for checks run as a pod whose exit status is the result:
// they retry every second until -wait has passed (a Service's endpoints or its
// DNS record may lag a few seconds behind the pod that is ready), log each
// failed attempt to stderr, and exit 1 with the last error if none succeeded.
// Each attempt has its own timeout (5s, or what is left of -wait). Names go
// through Go's own resolver, which reads /etc/resolv.conf, search domains and
// ndots included, so in a pod `get http://echo/` finds the Service echo in the
// pod's namespace the way a libc program would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run dispatches on argv[0] (the sh shim) and then on the first argument.
func run(argv []string, stdout, stderr io.Writer) int {
	args := argv[1:]
	if filepath.Base(argv[0]) == "sh" {
		args = append([]string{"sh"}, args...)
	}
	if len(args) == 0 {
		args = []string{"serve"}
	}
	code, err := command(args, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "testapp:", err)
	}
	return code
}

func command(args []string, stdout, stderr io.Writer) (int, error) {
	switch name, rest := args[0], args[1:]; name {
	case "serve":
		return serve(rest, stdout)
	case "sh":
		if len(rest) != 2 || rest[0] != "-c" {
			return 2, errors.New(`sh supports only: sh -c "COMMAND ARGS"`)
		}
		fields := strings.Fields(rest[1])
		if len(fields) == 0 {
			return 0, nil
		}
		if fields[0] == "sh" || fields[0] == "serve" {
			return 2, fmt.Errorf("sh -c: %s is not allowed here", fields[0])
		}
		return command(fields, stdout, stderr)
	case "get":
		return get(rest, stdout, stderr)
	case "lookup":
		return lookup(rest, stdout, stderr)
	case "hostname":
		h, err := os.Hostname()
		if err != nil {
			return 1, err
		}
		fmt.Fprintln(stdout, h)
	case "echo":
		fmt.Fprintln(stdout, strings.Join(rest, " "))
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, e := range env {
			fmt.Fprintln(stdout, e)
		}
	case "cat":
		for _, f := range rest {
			b, err := os.ReadFile(f)
			if err != nil {
				return 1, err
			}
			stdout.Write(b)
		}
	case "ls":
		dir := "."
		if len(rest) > 0 {
			dir = rest[0]
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 1, err
		}
		for _, e := range ents {
			fmt.Fprintln(stdout, e.Name())
		}
	case "sleep":
		if len(rest) != 1 {
			return 2, errors.New("usage: sleep SECONDS")
		}
		s, err := strconv.ParseFloat(rest[0], 64)
		if err != nil {
			return 2, fmt.Errorf("sleep: %w", err)
		}
		time.Sleep(time.Duration(s * float64(time.Second)))
	case "exit":
		if len(rest) != 1 {
			return 2, errors.New("usage: exit CODE")
		}
		c, err := strconv.Atoi(rest[0])
		if err != nil {
			return 2, fmt.Errorf("exit: %w", err)
		}
		return c, nil
	default:
		return 127, fmt.Errorf("%s: command not found (testapp knows serve, get, lookup, hostname, echo, env, cat, ls, sleep, exit)", name)
	}
	return 0, nil
}

func serve(args []string, stdout io.Writer) (int, error) {
	addr := ":8080"
	if len(args) == 2 && args[0] == "-addr" {
		addr = args[1]
	} else if len(args) != 0 {
		return 2, errors.New("usage: serve [-addr HOST:PORT]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := &http.Server{Addr: addr, Handler: handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	// One line at start so `kubectl logs` has something known to look for.
	fmt.Fprintf(stdout, "testapp listening on %s\n", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1, err
	}
	return 0, nil
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprintln(w, h)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, v)
	})
	return mux
}

// Retry timing of get and lookup. Variables so tests can shorten the pause.
var (
	defaultWait    = 20 * time.Second
	attemptTimeout = 5 * time.Second
	retryPause     = time.Second
)

// resolver is Go's own DNS client (not libc's, even in a cgo build), so
// lookups honour the pod's /etc/resolv.conf the same way in every build.
// Tests point its Dial at a DNS server on loopback.
var resolver = &net.Resolver{PreferGo: true}

// retryFlags parses `[-wait DURATION] ARG` for get and lookup.
func retryFlags(name string, args []string, stderr io.Writer) (string, time.Duration, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	wait := fs.Duration("wait", defaultWait, "keep trying for this long")
	if err := fs.Parse(args); err != nil {
		return "", 0, err
	}
	if fs.NArg() != 1 || *wait <= 0 {
		return "", 0, fmt.Errorf("usage: %s [-wait DURATION] %s", name, map[string]string{"get": "URL", "lookup": "NAME"}[name])
	}
	return fs.Arg(0), *wait, nil
}

// retry calls try, each time with its own timeout, until it succeeds or wait
// has passed; it logs every failed attempt to stderr.
func retry(what string, wait time.Duration, stderr io.Writer, try func(context.Context) error) error {
	start := time.Now()
	deadline := start.Add(wait)
	for attempt := 1; ; attempt++ {
		timeout := min(attemptTimeout, time.Until(deadline))
		ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 100*time.Millisecond))
		err := try(ctx)
		cancel()
		if err == nil {
			return nil
		}
		fmt.Fprintf(stderr, "testapp: %s: attempt %d: %v\n", what, attempt, err)
		if time.Now().Add(retryPause).After(deadline) {
			return fmt.Errorf("%s: failed %d times in %s, last: %w", what, attempt, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(retryPause)
	}
}

func get(args []string, stdout, stderr io.Writer) (int, error) {
	url, wait, err := retryFlags("get", args, stderr)
	if err != nil {
		return 2, err
	}
	// A URL that cannot work is a usage error, not something to retry.
	if u, err := neturl.Parse(url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 2, fmt.Errorf("get %q: want an http:// or https:// URL with a host", url)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:       (&net.Dialer{Resolver: resolver}).DialContext,
		DisableKeepAlives: true, // a new connection per attempt, as a fresh client would make
	}}
	var body []byte
	err = retry("get "+url, wait, stderr, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("reading body: %w", err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("status %s: %q", resp.Status, truncate(strings.TrimSpace(string(b)), 200))
		}
		body = b
		return nil
	})
	if err != nil {
		return 1, err
	}
	stdout.Write(body)
	return 0, nil
}

func lookup(args []string, stdout, stderr io.Writer) (int, error) {
	name, wait, err := retryFlags("lookup", args, stderr)
	if err != nil {
		return 2, err
	}
	var addrs []string
	err = retry("lookup "+name, wait, stderr, func(ctx context.Context) error {
		a, err := resolver.LookupHost(ctx, name)
		if err != nil {
			return err
		}
		addrs = a
		return nil
	})
	if err != nil {
		return 1, err
	}
	for _, a := range addrs {
		fmt.Fprintln(stdout, a)
	}
	return 0, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
