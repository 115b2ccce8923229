package pluginmgr

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A plugin process left over from a crashed host is killed at the next
// start when it still runs the recorded file, also when the file is a
// script run by an interpreter (a Python plugin); a process that runs
// something else under the recorded pid is left alone.
func TestReapKillsOnlyTheRecordedPlugin(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "watcher-script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spawn := func(name string, args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		// Wait for the exec to finish: until it starts /proc shows the
		// test binary, and while it runs the new executable can show
		// before its arguments (an empty cmdline).
		self, _ := os.Executable()
		proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
		deadline := time.Now().Add(10 * time.Second)
		for {
			exe, err := os.Readlink(proc + "/exe")
			args, _ := os.ReadFile(proc + "/cmdline")
			if err == nil && exe != self && len(args) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start: exe %q %v", name, exe, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return cmd
	}
	pids := pidFile{path: filepath.Join(dir, "watcher-script.pid")}

	other := spawn("sleep", "601")
	pids.write(other.Process.Pid, realPath(script))
	if got := pids.reap(); got != 0 {
		t.Fatalf("reaped pid %d, which runs sleep, not the plugin", got)
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Fatalf("a process that is not the plugin was killed: %v", err)
	}

	leftover := spawn(script)
	pids.write(leftover.Process.Pid, realPath(script))
	if got := pids.reap(); got != leftover.Process.Pid {
		t.Fatalf("reaped pid %d, want the script's %d", got, leftover.Process.Pid)
	}
	err := leftover.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the leftover script ended with %v, want killed", err)
	}
	if _, err := os.Stat(pids.path); !os.IsNotExist(err) {
		t.Fatalf("the pid file is still there: %v", err)
	}
}
