package hostileinput

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// The API routes the hostile bodies are posted to.
const (
	deliveriesPath = "/api/v1/internal/deliveries"
	usersPath      = "/api/v1/internal/users"
)

// postRaw sends body as it is (it is not valid JSON on purpose, or not
// what the contract allows) to service's API at url, with its token, and
// returns the answer, whatever its status, once it matched the service's
// OpenAPI document.
func postRaw(ctx context.Context, service, url, token string, body []byte) harness.Response {
	GinkgoHelper()
	resp, err := harness.Do(ctx, harness.Request{Method: http.MethodPost, URL: url, Token: token, RawBody: body, Service: service})
	Expect(err).NotTo(HaveOccurred())
	return resp
}

func validDelivery() harness.DeliveryCommand {
	return harness.DeliveryCommand{
		Source:         "acceptance",
		PayloadMode:    "rendered",
		Subject:        "Hello",
		TextBody:       "Hello there",
		To:             []string{harness.UniqueName("to") + "@example.com"},
		IdempotencyKey: harness.UniqueName("key"),
		RequestedAtMS:  time.Now().UnixMilli(),
	}
}

func validUser() harness.NewUser {
	return harness.NewUser{
		Email:       harness.UniqueName("user") + "@example.com",
		DisplayName: "Ada",
		Locale:      "en-GB",
	}
}

// asMap is v as the JSON object it encodes to, for a spec to spoil; numbers
// stay as they were written.
func asMap(v any) map[string]any {
	GinkgoHelper()
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	Expect(dec.Decode(&m)).To(Succeed())
	return m
}

func encode(v map[string]any) []byte {
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return b
}

// expect400 checks the contract's error: 400 invalid_request and a message
// naming field.
func expect400(resp harness.Response, field string) {
	GinkgoHelper()
	Expect(resp.Status).To(Equal(http.StatusBadRequest), "%s", resp.Body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	Expect(json.Unmarshal(resp.Body, &e)).To(Succeed(), "%s", resp.Body)
	Expect(e.Error.Code).To(Equal("invalid_request"), "%s", resp.Body)
	Expect(e.Error.Message).To(ContainSubstring(field))
}

// expectAccepted posts a valid delivery and checks that Mail took it as a
// new one and sent it, with one attempt: at once in stub mode, as the
// suite's own Mail runs, or once its SMTP server took it, as a deployment's
// does.
func expectAccepted(ctx context.Context) {
	GinkgoHelper()
	cmd := validDelivery()
	created, err := pipeline.MailClient().CreateDelivery(ctx, cmd)
	Expect(err).NotTo(HaveOccurred())
	Expect(created.HTTPStatus).To(Equal(http.StatusAccepted))
	Expect(created.Replayed).To(BeFalse())
	Expect(created.IdempotencyKey).To(Equal(cmd.IdempotencyKey))
	Expect(created.To).To(Equal(cmd.To))
	Expect(created.Subject).To(Equal(cmd.Subject))
	Expect(created.TextBody).To(Equal(cmd.TextBody))
	if mail := pipeline.Service("mail"); mail != nil {
		Expect(mail.Var("SMTP_MODE")).To(Equal("stub"), "the boundary pipeline's Mail")
		Expect(created.Status).To(Equal("sent"), "stub mode: stored already sent")
	}
	Eventually(ctx, func(g Gomega) {
		d, err := pipeline.MailClient().Delivery(ctx, created.DeliveryID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.Status).To(Equal("sent"))
		g.Expect(d.Attempts).To(HaveLen(1))
		g.Expect(d.Attempts[0].Outcome).To(Equal("sent"))
	}).Should(Succeed())
}

// expectCreated creates a valid user and checks that it was stored.
func expectCreated(ctx context.Context) {
	GinkgoHelper()
	u := validUser()
	got, err := pipeline.UserClient().Create(ctx, u)
	Expect(err).NotTo(HaveOccurred())
	Expect(got.Email).To(Equal(u.Email))
	Expect(got.DisplayName).To(Equal(u.DisplayName))
	Expect(got.Locale).To(Equal(u.Locale))
	Expect(got.EmailNotifications).To(BeTrue())
	Expect(got.UserID).To(HavePrefix("u-"))
}

var _ = describe("the Mail API", Label(speclabel.Mail), func() {
	DescribeTable("answers a malformed delivery with 400 naming the field, then accepts a valid one",
		behaviors.Proves("mail.api.create-invalid", "mail.api.create-accepted", "mail.stub.kept-and-sent"),
		func(ctx SpecContext, spoil func(map[string]any) []byte, field string) {
			expect400(postRaw(ctx, "mail", pipeline.MailURL+deliveriesPath, pipeline.Tokens.Mail, spoil(asMap(validDelivery()))), field)
			expectAccepted(ctx)
		},
		Entry("an unknown field", func(d map[string]any) []byte { d["colour"] = "red"; return encode(d) }, "colour"),
		Entry("recipients of the wrong type", func(d map[string]any) []byte { d["to"] = "a@example.com"; return encode(d) }, "to"),
		Entry("CR/LF in the subject", behaviors.Proves("mail.command.control-characters-refused"),
			func(d map[string]any) []byte { d["subject"] = "a\r\nBcc: x@example.com"; return encode(d) }, "subject"),
		Entry("CR/LF in an address", behaviors.Proves("mail.command.control-characters-refused"), func(d map[string]any) []byte {
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

var _ = describe("the User Service API", func() {
	DescribeTable("answers a malformed user with 400 naming the field, then creates a valid one",
		behaviors.Proves("user.create.invalid", "user.create.stored"),
		func(ctx SpecContext, spoil func(map[string]any) []byte, field string) {
			expect400(postRaw(ctx, "userservice", pipeline.UserURL+usersPath, pipeline.Tokens.User, spoil(asMap(validUser()))), field)
			expectCreated(ctx)
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

	It("keeps answering after a burst of garbage", behaviors.Proves(
		"user.create.invalid",
	), func(ctx SpecContext) {
		for i := range 50 {
			resp := postRaw(ctx, "userservice", pipeline.UserURL+usersPath, pipeline.Tokens.User, []byte(fmt.Sprintf("\x00garbage %d \xff", i)))
			Expect(resp.Status).To(Equal(http.StatusBadRequest), "%s", resp.Body)
		}
		expectCreated(ctx)
	})
})
