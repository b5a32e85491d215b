// Package api holds meshkeeper's API groups (config, policy) and the condition vocabulary they
// share; its tests prove the generated CRDs against a real apiserver.
package api
