# The Perl twin of basic.py: one handler per behaviour the end-to-end tests need.
package Basic;

use strict;
use warnings;
use Cocaine qw(streaming error);

sub echo { return ($_[0]) }

sub zecho {
    my ($request) = @_;
    die "boom\n" if $request eq 'boom';
    return ($request, '|', uc $request);
}

streaming 'stream_echo';
sub stream_echo {
    my ($request, $response) = @_;
    while (defined(my $chunk = $request->next)) {
        $response->write("echo:$chunk");
    }
    $response->close;
}

sub code {
    my ($number, $message) = split / /, $_[0], 2;
    error($number, $message);
}

sub pid { return ("$$") }

# A real hang: blocks the worker for the request's seconds.
sub sleep {
    CORE::sleep($_[0] || 1);
    return ('slept');
}

streaming 'announce_sleep';
sub announce_sleep {
    my ($request, $response) = @_;
    my $seconds = $request->read || 1;
    $response->write("$$");
    $response->sleep($seconds);
    $response->write('done');
}

1;
