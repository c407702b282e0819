// Command gameserver is the game server of the tests: the smallest program
// that behaves like a game container for the Runtime Manager — it listens,
// answers health probes, and can turn unhealthy or exit on a timer or on
// request, so probe, inspect and reconcile paths run against a real process.
// The harness builds it into a FROM-scratch image (harness.BuildGoImage).
//
// Environment:
//
//	PORT                  listen port (default 8080), on every interface
//	GAME_UNHEALTHY_AFTER  duration; after it GET /healthz answers 500
//	GAME_EXIT_AFTER       duration; after it the process exits with GAME_EXIT_CODE
//	GAME_EXIT_CODE        exit code for GAME_EXIT_AFTER and POST /control/exit (default 3)
//
// HTTP:
//
//	GET  /healthz            200 "ok", or 500 "unhealthy"
//	GET  /info               JSON: args, environment, hostname
//	POST /control/unhealthy  /healthz answers 500 from now on
//	POST /control/exit       exit with GAME_EXIT_CODE (or ?code=N) after answering 202
//
// It logs JSON lines to stdout, stops cleanly (exit 0) on SIGTERM or SIGINT,
// and exits 2 naming the variable when one is invalid.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		logger.Error("invalid configuration", "error", err.Error())
		os.Exit(2)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.port)))
	if err != nil {
		logger.Error("listen", "error", err.Error())
		os.Exit(1)
	}
	os.Exit(serve(ctx, l, cfg, logger))
}

type config struct {
	port           int
	unhealthyAfter time.Duration // 0: never
	exitAfter      time.Duration // 0: never
	exitCode       int
}

func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{port: 8080, exitCode: 3}
	if v := getenv("PORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil || port < 0 || port > 65535 {
			return config{}, fmt.Errorf("PORT: %q is not a port number", v)
		}
		cfg.port = port
	}
	for name, target := range map[string]*time.Duration{
		"GAME_UNHEALTHY_AFTER": &cfg.unhealthyAfter,
		"GAME_EXIT_AFTER":      &cfg.exitAfter,
	} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return config{}, fmt.Errorf("%s: %q is not a positive duration", name, v)
			}
			*target = d
		}
	}
	if v := getenv("GAME_EXIT_CODE"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 || code > 255 {
			return config{}, fmt.Errorf("GAME_EXIT_CODE: %q is not an exit code (0-255)", v)
		}
		cfg.exitCode = code
	}
	return cfg, nil
}

// serve runs the server on l until ctx ends (exit code 0) or an exit is due
// (its code), and returns the exit code.
func serve(ctx context.Context, l net.Listener, cfg config, logger *slog.Logger) int {
	var unhealthy atomic.Bool
	exit := make(chan int, 1)
	requestExit := func(code int, why string) {
		select {
		case exit <- code:
			logger.Info("exiting", "code", code, "reason", why)
		default:
		}
	}
	if cfg.unhealthyAfter > 0 {
		t := time.AfterFunc(cfg.unhealthyAfter, func() {
			unhealthy.Store(true)
			logger.Info("unhealthy", "reason", "GAME_UNHEALTHY_AFTER")
		})
		defer t.Stop()
	}
	if cfg.exitAfter > 0 {
		t := time.AfterFunc(cfg.exitAfter, func() { requestExit(cfg.exitCode, "GAME_EXIT_AFTER") })
		defer t.Stop()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if unhealthy.Load() {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, _ *http.Request) {
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"args": os.Args, "env": os.Environ(), "hostname": host})
	})
	mux.HandleFunc("POST /control/unhealthy", func(w http.ResponseWriter, _ *http.Request) {
		unhealthy.Store(true)
		logger.Info("unhealthy", "reason", "POST /control/unhealthy")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /control/exit", func(w http.ResponseWriter, r *http.Request) {
		code := cfg.exitCode
		if v := r.URL.Query().Get("code"); v != "" {
			c, err := strconv.Atoi(v)
			if err != nil || c < 0 || c > 255 {
				http.Error(w, "code: not an exit code (0-255)", http.StatusBadRequest)
				return
			}
			code = c
		}
		w.WriteHeader(http.StatusAccepted)
		requestExit(code, "POST /control/exit")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	logger.Info("listening", "addr", l.Addr().String())

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("stopping", "reason", "signal")
	case code = <-exit:
	case err := <-served:
		logger.Error("serve", "error", err.Error())
		return 1
	}
	// Let the answer to POST /control/exit reach the client.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("shutdown", "error", err.Error())
	}
	return code
}
