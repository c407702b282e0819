package hostileinput_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// post sends body to url and returns the status and the decoded error body.
func post(ctx context.Context, url string, body []byte) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(data)
}

func validDeliveryJSON() map[string]any {
	return map[string]any{
		"source":          "acceptance",
		"payload_mode":    "rendered",
		"subject":         "Hello",
		"text_body":       "Hello there",
		"to":              []string{harness.UniqueName("to") + "@example.com"},
		"idempotency_key": harness.UniqueName("key"),
		"requested_at_ms": time.Now().UnixMilli(),
	}
}

func validUserJSON() map[string]any {
	return map[string]any{
		"email":        harness.UniqueName("user") + "@example.com",
		"display_name": "Ada",
		"locale":       "en-GB",
	}
}

func encode(v map[string]any) []byte {
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return b
}

// expect400 checks the contract's error: 400 and a message naming field.
func expect400(status int, body, field string) {
	GinkgoHelper()
	Expect(status).To(Equal(http.StatusBadRequest), body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	Expect(json.Unmarshal([]byte(body), &e)).To(Succeed(), body)
	Expect(e.Error.Message).To(ContainSubstring(field))
}

var _ = Describe("the Mail API", Label(speclabel.HostileInput, speclabel.Mail), func() {
	DescribeTable("answers a malformed delivery with 400 naming the field, then accepts a valid one",
		func(ctx SpecContext, spoil func(map[string]any) []byte, field string) {
			status, body := post(ctx, pipeline.MailURL+"/api/v1/internal/deliveries", spoil(validDeliveryJSON()))
			expect400(status, body, field)
			status, body = post(ctx, pipeline.MailURL+"/api/v1/internal/deliveries", encode(validDeliveryJSON()))
			Expect(status).To(Equal(http.StatusAccepted), body)
		},
		Entry("an unknown field", func(d map[string]any) []byte { d["colour"] = "red"; return encode(d) }, "colour"),
		Entry("recipients of the wrong type", func(d map[string]any) []byte { d["to"] = "a@example.com"; return encode(d) }, "to"),
		Entry("CR/LF in the subject", func(d map[string]any) []byte { d["subject"] = "a\r\nBcc: x@example.com"; return encode(d) }, "subject"),
		Entry("CR/LF in an address", func(d map[string]any) []byte {
			d["to"] = []string{"v@example.com\r\nBcc: x@example.com"}
			return encode(d)
		}, "to"),
		Entry("a body over the size limit", func(d map[string]any) []byte {
			d["text_body"] = strings.Repeat("x", 2<<20)
			return encode(d)
		}, "exceeds"),
		Entry("not JSON", func(map[string]any) []byte { return []byte("{to: nobody") }, "JSON"),
	)
})

var _ = Describe("the User Service API", Label(speclabel.HostileInput), func() {
	DescribeTable("answers a malformed user with 400 naming the field, then creates a valid one",
		func(ctx SpecContext, spoil func(map[string]any) []byte, field string) {
			status, body := post(ctx, pipeline.UserURL+"/api/v1/internal/users", spoil(validUserJSON()))
			expect400(status, body, field)
			status, body = post(ctx, pipeline.UserURL+"/api/v1/internal/users", encode(validUserJSON()))
			Expect(status).To(Equal(http.StatusCreated), body)
		},
		Entry("CR/LF in the e-mail", func(u map[string]any) []byte { u["email"] = "a@example.com\r\nBcc: b@example.com"; return encode(u) }, "email"),
		Entry("an e-mail of the wrong type", func(u map[string]any) []byte { u["email"] = 42; return encode(u) }, "email"),
		Entry("a locale that is not BCP 47", func(u map[string]any) []byte { u["locale"] = "english please"; return encode(u) }, "locale"),
		Entry("an unknown field", func(u map[string]any) []byte { u["is_admin"] = true; return encode(u) }, "is_admin"),
		Entry("an oversized display name", func(u map[string]any) []byte {
			u["display_name"] = strings.Repeat("y", 2<<20)
			return encode(u)
		}, "exceeds"),
		Entry("a missing e-mail", func(u map[string]any) []byte { delete(u, "email"); return encode(u) }, "email"),
	)

	It("keeps answering after a burst of garbage", func(ctx SpecContext) {
		for i := range 50 {
			status, _ := post(ctx, pipeline.UserURL+"/api/v1/internal/users", []byte(fmt.Sprintf("\x00garbage %d \xff", i)))
			Expect(status).To(Equal(http.StatusBadRequest))
		}
		status, body := post(ctx, pipeline.UserURL+"/api/v1/internal/users", encode(validUserJSON()))
		Expect(status).To(Equal(http.StatusCreated), body)
	})
})
