// Package lobby is the Runtime Manager's best-effort view of the game lobby:
// before a start it asks the lobby about the game, only to log what the
// lobby knows. The lobby being down, slow or wrong never affects a start.
package lobby

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client asks the lobby's internal API about games.
type Client struct {
	// BaseURL is RTMANAGER_LOBBY_INTERNAL_BASE_URL; empty disables lookups.
	BaseURL string
	Timeout time.Duration
	HTTP    *http.Client
}

// Game is what a lookup learned: the HTTP status and the start of the body.
type Game struct {
	Status int
	Body   string
}

// LookupGame GETs {base}/api/v1/internal/games/{game_id} within Timeout.
// Callers log the result and carry on whatever it is.
func (c *Client) LookupGame(ctx context.Context, gameID string) (Game, error) {
	if c == nil || c.BaseURL == "" {
		return Game{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	u := strings.TrimRight(c.BaseURL, "/") + "/api/v1/internal/games/" + url.PathEscape(gameID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Game{}, fmt.Errorf("lobby lookup %s: %w", gameID, err)
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Game{}, fmt.Errorf("lobby lookup %s: %w", gameID, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return Game{Status: resp.StatusCode, Body: string(body)}, nil
}
