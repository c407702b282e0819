package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxBodyBytes bounds request bodies; larger ones get 400 without being read.
const MaxBodyBytes = 1 << 20

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the contract's error shape: {"error":{"code","message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes the contract's JSON error.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, ErrorBody{ErrorDetail{code, message}})
}

// BadRequest writes a 400 with code "invalid_request" and the reason.
func BadRequest(w http.ResponseWriter, err error) {
	WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
}

// DecodeJSON strictly decodes one JSON object from r's body into dst:
// unknown fields, anything but an object, trailing data and bodies over
// MaxBodyBytes are errors whose text is fit to return to the caller.
func DecodeJSON(r *http.Request, dst any) error {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return fmt.Errorf("request body exceeds %d bytes", MaxBodyBytes)
		}
		return fmt.Errorf("reading the request body: %v", err)
	}
	data = bytes.Trim(data, " \t\r\n") // JSON's whitespace, not Unicode's
	if len(data) == 0 {
		return errors.New("request body is empty")
	}
	if data[0] != '{' {
		return errors.New("malformed JSON body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("malformed JSON body: %v", err)
	}
	// More stops at a closing bracket, so ask the decoder for the next
	// token instead: only the end of the input is acceptable.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed JSON body: trailing data after the object")
	}
	return nil
}
