package org.trialcds.hapi;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import jakarta.annotation.PreDestroy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Moves batch2 jobs (Bulk Data $export) along every few seconds instead of once a minute.
 *
 * <p>HAPI starts a queued batch2 job, and moves it from one step to the next, on its job
 * maintenance pass, which it schedules once a minute. A Bulk export has three steps, so even
 * an export of two patients took about three minutes. This test server asks for a maintenance
 * pass every {@code trialcds.hapi.job-maintenance-millis} (default 2 s) instead; the pass is
 * HAPI's own (it takes the same cluster lock), only its pace differs. With nothing queued a pass
 * is one small query. Set the property to 0 to keep HAPI's own pace.
 */
@Component
public class BulkExportPacer {

	private static final Logger ourLog = LoggerFactory.getLogger(BulkExportPacer.class);

	private final IJobMaintenanceService myJobMaintenanceService;

	@Value("${trialcds.hapi.job-maintenance-millis:2000}")
	private long myIntervalMillis;

	private ScheduledExecutorService myExecutor;

	public BulkExportPacer(IJobMaintenanceService theJobMaintenanceService) {
		myJobMaintenanceService = theJobMaintenanceService;
	}

	// once the application is ready: before that HAPI's scheduler refuses to trigger jobs
	@EventListener(ApplicationReadyEvent.class)
	public void start() {
		if (myIntervalMillis <= 0) {
			return;
		}
		myExecutor = Executors.newSingleThreadScheduledExecutor(runnable -> {
			Thread thread = new Thread(runnable, "trialcds-job-maintenance-pacer");
			thread.setDaemon(true);
			return thread;
		});
		myExecutor.scheduleWithFixedDelay(this::pass, myIntervalMillis, myIntervalMillis, TimeUnit.MILLISECONDS);
		ourLog.info("trialcds HAPI: batch2 job maintenance pass every {} ms", myIntervalMillis);
	}

	private void pass() {
		try {
			myJobMaintenanceService.triggerMaintenancePass();
		} catch (RuntimeException e) {
			// never let one failed pass stop the schedule (e.g. during shutdown)
			ourLog.debug("job maintenance pass failed: {}", e.toString());
		}
	}

	@PreDestroy
	public void stop() {
		if (myExecutor != null) {
			myExecutor.shutdownNow();
		}
	}
}
