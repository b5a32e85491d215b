// Package text holds the one way meshkeeper shortens a message for a field with a size limit
// (condition and event messages, finding texts, parse errors), so that none of them cuts a UTF-8
// character in half and the API server never receives invalid text.
package text
