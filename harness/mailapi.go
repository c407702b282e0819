package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DeliverySummary is an item of Mail's delivery list.
type DeliverySummary struct {
	DeliveryID  string   `json:"delivery_id"`
	Source      string   `json:"source"`
	PayloadMode string   `json:"payload_mode"`
	TemplateID  string   `json:"template_id"`
	Locale      string   `json:"locale"`
	To          []string `json:"to"`
	Status      string   `json:"status"`
}

// DeliveryDetail is Mail's delivery detail. It is decoded leniently: the
// contract may add fields.
type DeliveryDetail struct {
	DeliverySummary
	IdempotencyKey    string         `json:"idempotency_key"`
	Subject           string         `json:"subject"`
	TemplateVariables map[string]any `json:"template_variables"`
	Attempts          []struct {
		Attempt int    `json:"attempt"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"attempts"`
}

var apiClient = &http.Client{Timeout: 5 * time.Second}

// GetJSON GETs url and decodes a 200 answer into out; any other status is an
// error carrying the body.
func GetJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// Deliveries lists Mail's deliveries matching query (source, status,
// recipient, template_id, idempotency_key …), newest first.
func (p *Pipeline) Deliveries(ctx context.Context, query url.Values) ([]DeliverySummary, error) {
	var body struct {
		Items []DeliverySummary `json:"items"`
	}
	err := GetJSON(ctx, p.MailURL+"/api/v1/internal/deliveries?"+query.Encode(), &body)
	return body.Items, err
}

// Delivery returns one delivery's detail.
func (p *Pipeline) Delivery(ctx context.Context, id string) (DeliveryDetail, error) {
	var d DeliveryDetail
	err := GetJSON(ctx, p.MailURL+"/api/v1/internal/deliveries/"+url.PathEscape(id), &d)
	return d, err
}

// AdminRouteKey is the idempotency key Notification gives the mail command of
// the admin route to address for the intent with entry ID intentEntryID.
func AdminRouteKey(intentEntryID, address string) string {
	return "notification:" + intentEntryID + "/email:email:" + address
}
