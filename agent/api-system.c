// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "runtime/cgroup.h"
#include "runtime/image.h"

void api_ping(struct api_req *r)
{
	api_reply_raw(r, 200, "text/plain; charset=utf-8", "OK", 2);
}

void api_version(struct api_req *r)
{
	struct utsname u;
	uname(&u);
	api_reply_json(r, 200,
		       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Version", SHOAL_VERSION,
				 "ApiVersion", "1.43", "MinAPIVersion", "1.24", "Os", "linux",
				 "Arch", "amd64", "KernelVersion", u.release, "Platform", "shoal"));
}

void api_info(struct api_req *r)
{
	struct agent *a = r->agent;
	int running = 0, stopped = 0, total = 0;
	for (struct container *c = a->containers; c; c = c->next) {
		total++;
		if (c->state == CONTAINER_RUNNING)
			running++;
		else if (c->state == CONTAINER_EXITED)
			stopped++;
	}
	json_t *images = NULL;
	size_t nimages = 0;
	if (image_store_list(a->images, &images, NULL) == 0)
		nimages = json_array_size(images);
	json_decref(images);
	struct utsname u;
	uname(&u);
	struct sysinfo si;
	sysinfo(&si);
	enum rt_cgroup_layout layout = RT_CGROUP_V2;
	rt_cgroup_detect(&layout, NULL);
	const char *cgv = layout == RT_CGROUP_V2 ? "2" : "1";
	api_reply_json(
		r, 200,
		json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i,"
			  " s:I, s:s, s:s, s:s, s:s, s:s, s:s}",
			  "ID", a->node_id, "Name", a->hostname, "Containers", total,
			  "ContainersRunning", running, "ContainersPaused", 0, "ContainersStopped",
			  stopped, "Images", (int)nimages, "Driver", "overlay", "CgroupDriver",
			  "cgroupfs", "CgroupVersion", cgv, "CgroupLayout",
			  layout == RT_CGROUP_HYBRID ? "hybrid"
			  : layout == RT_CGROUP_V1   ? "v1"
						     : "v2",
			  "KernelVersion", u.release, "OperatingSystem", "linux", "NCPU",
			  (int)sysconf(_SC_NPROCESSORS_ONLN), "MemTotal",
			  (json_int_t)si.totalram * si.mem_unit, "ServerVersion", SHOAL_VERSION,
			  "DockerRootDir", a->cfg.data_dir, "RunDir", a->cfg.run_dir,
			  "CgroupParent", a->cfg.cgroup_parent, "StoreBackend",
			  a->cfg.store_backend, "DefaultRuntime", "shoal"));
}
