package notificationmail

import (
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
)

// The User Service behind Notification, through its own API.
var _ = describe("the User Service API", func() {
	It("creates a user with its defaults, stores its locale canonically, and finds it", behaviors.Proves(
		"user.create.defaults", "user.create.stored", "user.locale.canonical", "user.get",
		"user.exists",
	), func(ctx SpecContext) {
		local := harness.UniqueName("ada.lovelace")
		u, err := svc.users.Create(ctx, harness.NewUser{Email: local + "@example.org"})
		Expect(err).NotTo(HaveOccurred())
		Expect(u.UserID).To(MatchRegexp(`^u-[a-z2-7]{26}$`))
		Expect(u.Email).To(Equal(local + "@example.org"))
		Expect(u.DisplayName).To(Equal(local))
		Expect(u.Locale).To(Equal("en"))
		Expect(u.EmailNotifications).To(BeTrue())
		Expect(u.CreatedAtMS).To(BeNumerically(">", 0))
		Expect(u.UpdatedAtMS).To(Equal(u.CreatedAtMS))

		got, err := svc.users.Get(ctx, u.UserID)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(u))
		exists, err := svc.users.Exists(ctx, u.UserID)
		Expect(err).NotTo(HaveOccurred())
		Expect(exists).To(BeTrue())

		optedOut := false
		for given, canonical := range map[string]string{"en_us": "en-US", "zh-hant-tw": "zh-Hant-TW", "iw": "he"} {
			id := harness.UniqueName("locale")
			u, err := svc.users.Create(ctx, harness.NewUser{UserID: id, Email: id + "@Example.org", DisplayName: "Grace Hopper",
				Locale: given, EmailNotifications: &optedOut})
			Expect(err).NotTo(HaveOccurred())
			Expect(u.UserID).To(Equal(id))
			Expect(u.Email).To(Equal(id+"@Example.org"), "kept as written")
			Expect(u.DisplayName).To(Equal("Grace Hopper"))
			Expect(u.Locale).To(Equal(canonical), "given %s", given)
			Expect(u.EmailNotifications).To(BeFalse())
			got, err := svc.users.Get(ctx, id)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(u))
		}

		for _, id := range []string{harness.UniqueName("nobody"), "not a user id!"} {
			_, err := svc.users.Get(ctx, id)
			Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%q: %v", id, err)
			Expect(harness.ErrorCodeOf(err)).To(Equal("not_found"))
			exists, err := svc.users.Exists(ctx, id)
			Expect(err).NotTo(HaveOccurred(), "unknown IDs are not an error")
			Expect(exists).To(BeFalse())
		}
	})

	It("refuses an address another user has in any letter case, and a used user ID, with 409", behaviors.Proves(
		"user.create.taken",
	), func(ctx SpecContext) {
		first := harness.UniqueName("grace")
		_, err := svc.users.Create(ctx, harness.NewUser{UserID: first, Email: first + "@example.org"})
		Expect(err).NotTo(HaveOccurred())

		second := harness.UniqueName("grace")
		_, err = svc.users.Create(ctx, harness.NewUser{UserID: second, Email: strings.ToUpper(first) + "@EXAMPLE.ORG"})
		Expect(harness.StatusOf(err)).To(Equal(http.StatusConflict), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("email_taken"))

		_, err = svc.users.Create(ctx, harness.NewUser{UserID: first, Email: second + "@example.org"})
		Expect(harness.StatusOf(err)).To(Equal(http.StatusConflict), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("user_id_taken"))

		_, err = svc.users.Create(ctx, harness.NewUser{UserID: second, Email: second + "@example.org"})
		Expect(err).NotTo(HaveOccurred())
		taken := strings.ToUpper(first) + "@example.org"
		_, err = svc.users.Patch(ctx, second, harness.UserPatch{Email: &taken})
		Expect(harness.StatusOf(err)).To(Equal(http.StatusConflict), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("email_taken"))
		got, err := svc.users.Get(ctx, second)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Email).To(Equal(second+"@example.org"), "the refused patch changed nothing")
	})

	It("patches only the fields given, and deletes a user", behaviors.Proves(
		"user.patch", "user.delete",
	), func(ctx SpecContext) {
		id := harness.UniqueName("hopper")
		u, err := svc.users.Create(ctx, harness.NewUser{UserID: id, Email: id + "@example.org", DisplayName: "Grace", Locale: "en-GB"})
		Expect(err).NotTo(HaveOccurred())

		name, locale := "Grace Hopper", "fr_ca"
		patched, err := svc.users.Patch(ctx, id, harness.UserPatch{DisplayName: &name, Locale: &locale})
		Expect(err).NotTo(HaveOccurred())
		Expect(patched.UserID).To(Equal(id))
		Expect(patched.Email).To(Equal(u.Email))
		Expect(patched.DisplayName).To(Equal(name))
		Expect(patched.Locale).To(Equal("fr-CA"))
		Expect(patched.EmailNotifications).To(BeTrue())
		Expect(patched.CreatedAtMS).To(Equal(u.CreatedAtMS))
		Expect(patched.UpdatedAtMS).To(BeNumerically(">=", u.UpdatedAtMS))
		// updated_at_ms moves on every patch, also one that changes no
		// value; the same patch again, until the clock has moved a
		// millisecond on.
		Eventually(ctx, func(g Gomega) {
			again, err := svc.users.Patch(ctx, id, harness.UserPatch{DisplayName: &name})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(again.CreatedAtMS).To(Equal(u.CreatedAtMS))
			g.Expect(again.UpdatedAtMS).To(BeNumerically(">", u.UpdatedAtMS))
			patched = again
		}).Should(Succeed())
		got, err := svc.users.Get(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(patched))
		Expect(got.Locale).To(Equal("fr-CA"))

		// The body is checked before the user is looked up: a bad body is a
		// 400 for an unknown user too.
		nobody := harness.UniqueName("nobody")
		for _, target := range []string{id, nobody} {
			for body, field := range map[string]string{`{}`: "", `{"user_id":"other"}`: "user_id", `{"created_at_ms":1}`: "created_at_ms"} {
				resp, err := harness.Do(ctx, harness.Request{Method: http.MethodPatch,
					URL: svc.UserURL + "/api/v1/internal/users/" + target, Token: svc.Tokens.User, RawBody: []byte(body), Service: "userservice"})
				Expect(err).NotTo(HaveOccurred())
				Expect(resp.Status).To(Equal(http.StatusBadRequest), "%s %s: %s", target, body, resp.Body)
				Expect(string(resp.Body)).To(ContainSubstring(`"invalid_request"`))
				Expect(string(resp.Body)).To(ContainSubstring(field))
			}
		}
		_, err = svc.users.Patch(ctx, nobody, harness.UserPatch{DisplayName: &name})
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("not_found"))

		Expect(svc.users.Delete(ctx, id)).To(Succeed())
		_, err = svc.users.Get(ctx, id)
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
		exists, err := svc.users.Exists(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(exists).To(BeFalse())
		err = svc.users.Delete(ctx, id)
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)

		// The ID and the address are free again.
		again, err := svc.users.Create(ctx, harness.NewUser{UserID: id, Email: u.Email})
		Expect(err).NotTo(HaveOccurred())
		Expect(again.UserID).To(Equal(id))
		Expect(again.Email).To(Equal(u.Email))
		Expect(again.DisplayName).To(Equal(id), "a new user: the default display name")
	})

	It("resolves users in order of first appearance, reporting the missing and the impossible", behaviors.Proves(
		"user.resolve", "user.resolve.limit",
	), func(ctx SpecContext) {
		optedOut := false
		a, b := harness.UniqueName("res"), harness.UniqueName("res")
		for _, u := range []harness.NewUser{
			{UserID: a, Email: a + "@example.org", DisplayName: "A", Locale: "de"},
			{UserID: b, Email: b + "@example.org", DisplayName: "B", EmailNotifications: &optedOut},
		} {
			_, err := svc.users.Create(ctx, u)
			Expect(err).NotTo(HaveOccurred())
		}
		ghost := harness.UniqueName("ghost")
		got, err := svc.users.Resolve(ctx, []string{b, ghost, a, b, "not a user id!", ghost})
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Missing).To(Equal([]string{ghost, "not a user id!"}))
		Expect(got.Users).To(HaveLen(2))
		Expect(got.Users[0].UserID).To(Equal(b))
		Expect(got.Users[0].EmailNotifications).To(BeFalse(), "opted-out users are returned like any other")
		Expect(got.Users[1].UserID).To(Equal(a))
		Expect(got.Users[1].Email).To(Equal(a + "@example.org"))
		Expect(got.Users[1].DisplayName).To(Equal("A"))
		Expect(got.Users[1].Locale).To(Equal("de"))

		tooMany := make([]string, 501)
		for i := range tooMany {
			tooMany[i] = harness.UniqueName("many")
		}
		for _, ids := range [][]string{{}, tooMany} {
			_, err := svc.users.Resolve(ctx, ids)
			Expect(harness.StatusOf(err)).To(Equal(http.StatusBadRequest), "%d IDs: %v", len(ids), err)
			Expect(harness.ErrorCodeOf(err)).To(Equal("invalid_request"))
		}
		all := tooMany[:500]
		got, err = svc.users.Resolve(ctx, all)
		Expect(err).NotTo(HaveOccurred(), "500 IDs are allowed")
		Expect(got.Missing).To(Equal(all))
		Expect(got.Users).To(BeEmpty())
	})
})
