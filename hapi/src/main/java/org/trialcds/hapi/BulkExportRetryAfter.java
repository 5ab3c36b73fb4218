package org.trialcds.hapi;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.filter.OncePerRequestFilter;

import java.io.IOException;

/**
 * The Retry-After this test server sends while a Bulk Data export is running.
 *
 * <p>HAPI's status endpoint ({@code $export-poll-status}) always answers "Retry-After: 120". A
 * client that honours it, as the Bulk Data IG asks, would wait two minutes per poll, although
 * {@link BulkExportPacer} finishes a test export in seconds. This filter replaces that header
 * with {@code trialcds.hapi.bulk-retry-after-seconds} (default 2) on status responses only.
 */
@Configuration
public class BulkExportRetryAfter {

	private static final String RETRY_AFTER = "Retry-After";
	private static final String STATUS_OPERATION = "$export-poll-status";

	@Value("${trialcds.hapi.bulk-retry-after-seconds:2}")
	private int myRetryAfterSeconds;

	@Bean
	public FilterRegistrationBean<OncePerRequestFilter> bulkExportRetryAfterFilter() {
		FilterRegistrationBean<OncePerRequestFilter> registration = new FilterRegistrationBean<>(new RetryAfterFilter());
		registration.addUrlPatterns("/fhir/*");
		registration.setName("bulkExportRetryAfter");
		return registration;
	}

	private final class RetryAfterFilter extends OncePerRequestFilter {
		@Override
		protected void doFilterInternal(
				HttpServletRequest theRequest, HttpServletResponse theResponse, FilterChain theChain)
				throws ServletException, IOException {
			if (theRequest.getRequestURI().endsWith(STATUS_OPERATION) && myRetryAfterSeconds > 0) {
				theChain.doFilter(theRequest, new PacedResponse(theResponse, String.valueOf(myRetryAfterSeconds)));
			} else {
				theChain.doFilter(theRequest, theResponse);
			}
		}
	}

	private static final class PacedResponse extends HttpServletResponseWrapper {
		private final String myRetryAfter;

		PacedResponse(HttpServletResponse theResponse, String theRetryAfter) {
			super(theResponse);
			myRetryAfter = theRetryAfter;
		}

		@Override
		public void addHeader(String theName, String theValue) {
			super.addHeader(theName, RETRY_AFTER.equalsIgnoreCase(theName) ? myRetryAfter : theValue);
		}

		@Override
		public void setHeader(String theName, String theValue) {
			super.setHeader(theName, RETRY_AFTER.equalsIgnoreCase(theName) ? myRetryAfter : theValue);
		}
	}
}
