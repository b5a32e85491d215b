// Package podtest builds the pods and MeshConfigs that table tests of drift, diagnose and the
// other pure packages judge, so that every package's fixtures carry the same containers, the
// same init container the injector adds and the same statuses the kubelet reports. It is test
// support; production code never imports it.
package podtest
