"""Knowledge from websites: fetching politely (robots.txt, a rate, conditional requests, redirects within the
allowed hosts), sitemaps, reading a help page's main content and its FAQ markup, and crawling a site."""
