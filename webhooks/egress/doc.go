// Package egress admits Egress policies only when every port, host and address in them has an
// effect, and warns when a policy opens more than its author probably meant.
package egress
