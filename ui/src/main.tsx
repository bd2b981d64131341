// The web UI's entry: the login page until a token is known, then the pages, live from the
// API's event stream.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { forgetToken, logOut, onUnauthorized, savedToken } from './api.ts';
import { Frame, Notice, PageTitle } from './components.tsx';
import { live } from './live.ts';
import { BackupsPage } from './pages/backups.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { EventsPage } from './pages/events.tsx';
import { LoginPage } from './pages/login.tsx';
import { NodesPage } from './pages/nodes.tsx';
import { RecurringJobsPage } from './pages/recurring-jobs.tsx';
import { SettingsPage } from './pages/settings.tsx';
import { VolumeDetailPage } from './pages/volume-detail.tsx';
import { VolumesPage } from './pages/volumes.tsx';
import { linkTo, useRoute } from './router.ts';
import './styles.css';

function Page(props: { route: string }) {
  const { route } = props;
  const volume = /^\/volumes\/([a-z0-9-]+)$/.exec(route);
  if (volume?.[1] !== undefined) return <VolumeDetailPage name={volume[1]} />;
  switch (route) {
    case '/':
      return <DashboardPage />;
    case '/volumes':
      return <VolumesPage />;
    case '/nodes':
      return <NodesPage />;
    case '/backups':
      return <BackupsPage />;
    case '/recurring-jobs':
      return <RecurringJobsPage />;
    case '/settings':
      return <SettingsPage />;
    case '/events':
      return <EventsPage />;
    default:
      return (
        <>
          <PageTitle>Not found</PageTitle>
          <Notice tone="warn">There is no page {route}. <a {...linkTo('/')}>Go to the dashboard</a>.</Notice>
        </>
      );
  }
}

function App() {
  const [loggedIn, setLoggedIn] = useState(savedToken() !== undefined);
  const route = useRoute();
  useEffect(() => onUnauthorized(() => {
    live.stop();
    forgetToken();
    setLoggedIn(false);
  }), []);
  useEffect(() => {
    if (loggedIn) live.start();
  }, [loggedIn]);
  // Move focus to the new page's content, so keyboard and screen-reader users start there.
  useEffect(() => {
    document.getElementById('main')?.focus();
  }, [route]);
  if (!loggedIn) return <LoginPage onLoggedIn={() => setLoggedIn(true)} />;
  const out = async (): Promise<void> => {
    live.stop();
    await logOut();
    setLoggedIn(false);
  };
  return <Frame onLogOut={() => void out()}><Page route={route} /></Frame>;
}

const root = document.getElementById('app');
if (root === null) throw new Error('index.html has no #app element');
render(<App />, root);
