// Command testapp is the lab's test workload: an HTTP server that answers with
// the pod's hostname, so tests can see which pod behind a Service answered.
//
// Its image has no shell and no busybox (there is nothing to build one from
// here), yet tests need `kubectl exec` and `kubectl logs`. So the image links
// /bin/sh to this binary, and testapp implements a few commands itself:
// when called as `sh -c "CMD ARGS"` (or `testapp sh -c ...`) it splits CMD on
// whitespace (no quoting, pipes or variables) and runs its own subcommand.
//
//	testapp [serve] [-addr :8080]   serve / (hostname), /healthz, /env/NAME
//	testapp hostname | env | echo ARGS | cat FILE... | ls DIR | sleep SECONDS
//	testapp exit CODE               exit with CODE (to test exec exit codes)
//	sh -c "echo hello"              the same subcommands through the sh shim
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	code, err := command(args, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "testapp:", err)
	}
	return code
}

func command(args []string, stdout io.Writer) (int, error) {
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
		return command(fields, stdout)
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
		return 127, fmt.Errorf("%s: command not found (testapp knows serve, hostname, echo, env, cat, ls, sleep, exit)", name)
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
